package walink_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store/sqlite"
	"github.com/walinkdev/walink/watest"
)

// Serve several accounts from one store: Config.NewDevice links another
// account beside those already stored, and Config.Device picks one again
// on the next run.
func ExampleConfig_newDevice() {
	ctx := context.Background()
	srv, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "walink-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "accounts.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	var linked []jid.JID
	for _, phone := range []string{"15550000001", "15550000002"} {
		cli := walink.NewClient(st, walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey(), NewDevice: true})
		if err := linkOne(ctx, srv.Phone(phone), cli); err != nil {
			log.Fatal(err)
		}
		linked = append(linked, cli.ID())
		cli.Close()
	}

	// Later: one client per stored account.
	for _, id := range linked {
		cli := walink.NewClient(st, walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey(), Device: id})
		if err := waitConnected(ctx, cli); err != nil {
			log.Fatal(err)
		}
		fmt.Println(cli.ID().User, "logged in:", cli.IsLoggedIn())
		cli.Close()
	}
	// Output:
	// 15550000001 logged in: true
	// 15550000002 logged in: true
}

// waitConnected connects cli and waits until it is logged in.
func waitConnected(ctx context.Context, cli *walink.Client) error {
	done := make(chan struct{}, 1)
	cli.AddEventHandler(func(e walink.Event) {
		if _, ok := e.(walink.Connected); ok {
			select {
			case done <- struct{}{}:
			default:
			}
		}
	})
	if err := cli.Connect(ctx); err != nil {
		return err
	}
	<-done
	return nil
}
