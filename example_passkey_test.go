package walink_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/pairing/passkey"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

// Link an account that WhatsApp guards with a passkey, by hand: answer the
// PairPasskeyRequest with an assertion (here the virtual phone's own
// passkey stands in for the user's authenticator), then confirm the code
// both sides show.
func ExampleClient_SendPasskeyResponse() {
	ctx := context.Background()
	sc := watest.DefaultScenario()
	sc.Passkey = watest.PasskeyCode // after the pair code
	srv, err := watest.Start(ctx, watest.Config{Scenario: &sc})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	phone := srv.Phone("15551234567")

	cli := walink.NewClient(memstore.New(), walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey()})
	defer cli.Close()
	done := make(chan error, 1)
	cli.AddEventHandler(func(e walink.Event) {
		switch e := e.(type) {
		case walink.PairPasskeyRequest:
			fmt.Println("passkey requested for", e.Options.RPID())
			b, err := phone.Assert(e.Options.JSON()) // the user's authenticator
			if err != nil {
				done <- err
				return
			}
			a, err := passkey.ParseAssertion(b)
			if err != nil {
				done <- err
				return
			}
			go func() {
				if err := cli.SendPasskeyResponse(ctx, a); err != nil {
					done <- err
				}
			}()
		case walink.PairPasskeyConfirmation:
			fmt.Println("the phone shows the same code:", len(e.Code) == 9)
			go func() {
				if err := cli.ConfirmPasskey(ctx); err != nil {
					done <- err
				}
			}()
		case walink.PairPasskeyError:
			done <- e.Err
		case walink.Connected:
			done <- nil
		}
	})
	if err := cli.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: "+1 555 123 4567"})
	if err != nil {
		log.Fatal(err)
	}
	go phone.EnterCode(ctx, code) // answers once linking ended
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in:", cli.IsLoggedIn())
	if errors.Is(cli.ConfirmPasskey(ctx), walink.ErrPasskeyNoRequest) {
		fmt.Println("no passkey request left")
	}
	// Output:
	// passkey requested for whatsapp.com
	// the phone shows the same code: true
	// logged in: true
	// no passkey request left
}
