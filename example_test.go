package walink_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

// Link a device by QR code against the local WhatsApp, whose virtual phone
// "scans" the code.
func ExampleClient_qr() {
	ctx := context.Background()
	srv, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	cli := walink.NewClient(memstore.New(), walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey()})
	defer cli.Close()
	qrs := make(chan string, 16)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(e walink.Event) {
		switch e := e.(type) {
		case walink.PairingQRCode:
			qrs <- e.Code
		case walink.PairSuccess:
			fmt.Println("paired with a", e.Platform, "phone")
		case walink.Connected:
			connected <- struct{}{}
		}
	})
	if err := cli.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	phone := srv.Phone("15551234567")
	for {
		_, err := phone.ScanQR(ctx, <-qrs)
		if errors.Is(err, watest.ErrRescan) {
			continue // WhatsApp retired the secret; scan the re-rendered code
		}
		if err != nil {
			log.Fatal(err)
		}
		break
	}
	<-connected
	fmt.Println("logged in:", cli.IsLoggedIn())
	// Output:
	// paired with a android phone
	// logged in: true
}

// Link a device with a pair code typed on the phone.
func ExampleClient_PairWithCode() {
	ctx := context.Background()
	srv, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	cli := walink.NewClient(memstore.New(), walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey()})
	defer cli.Close()
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(e walink.Event) {
		if _, ok := e.(walink.Connected); ok {
			connected <- struct{}{}
		}
	})
	if err := cli.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: "+1 555 123 4567", CustomCode: "WALKL1NK"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("type on the phone:", code)
	if _, err := srv.Phone("15551234567").EnterCode(ctx, code); err != nil {
		log.Fatal(err)
	}
	<-connected
	fmt.Println("logged in:", cli.IsLoggedIn())
	// Output:
	// type on the phone: WALKL1NK
	// logged in: true
}

// Reconnect with a saved session, then log out.
func ExampleClient_Logout() {
	ctx := context.Background()
	srv, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	st := memstore.New()
	cfg := walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey()}

	// Link once with a pair code.
	first := walink.NewClient(st, cfg)
	linked := make(chan struct{}, 1)
	first.AddEventHandler(func(e walink.Event) {
		if _, ok := e.(walink.Connected); ok {
			linked <- struct{}{}
		}
	})
	if err := first.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	code, err := first.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: "15551234567"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := srv.Phone("15551234567").EnterCode(ctx, code); err != nil {
		log.Fatal(err)
	}
	<-linked
	first.Close()

	// A new client on the same store logs in without pairing.
	cli := walink.NewClient(st, cfg)
	defer cli.Close()
	events := make(chan walink.Event, 16)
	cli.AddEventHandler(func(e walink.Event) { events <- e })
	if err := cli.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	for e := range events {
		if _, ok := e.(walink.Connected); ok {
			fmt.Println("connected without pairing")
			break
		}
	}
	if err := cli.Logout(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in:", cli.IsLoggedIn())
	// Output:
	// connected without pairing
	// logged in: false
}
