package walink_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store/sqlite"
)

// TestManyAccountsOneStore: with Config.NewDevice, clients sharing one
// SQLite store each pair a device of their own; later each reconnects to
// its own account by Config.Device, and a NewDevice client that never
// paired leaves nothing behind after Close.
func TestManyAccountsOneStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	phones := []string{"15550000001", "15550000002", "15550000003"}
	ids := make([]jid.JID, len(phones))
	for i, phone := range phones {
		cfg := clientConfig(t, srv)
		cfg.NewDevice = true
		cli := walink.NewClient(st, cfg)
		if err := linkOne(ctx, srv.Phone(phone), cli); err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
		ids[i] = cli.ID()
		if ids[i].User != phone {
			t.Fatalf("account %d linked as %v, want phone %s", i, ids[i], phone)
		}
		if err := cli.Close(); err != nil {
			t.Fatal(err)
		}
	}
	devs, err := st.Devices(ctx)
	if err != nil || len(devs) != len(phones) {
		t.Fatalf("store holds %d devices (%v), want %d", len(devs), err, len(phones))
	}

	// Each account logs in again as itself, all at once.
	for i, id := range ids {
		cfg := clientConfig(t, srv)
		cfg.Device = id
		cli, rec := newClient(t, st, cfg)
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
		waitFor[walink.Connected](t, rec, &from, 10*time.Second)
		if cli.ID() != id {
			t.Fatalf("account %d logged in as %v", i, cli.ID())
		}
		for _, e := range rec.all() {
			if _, ok := e.(walink.PairingQRCode); ok {
				t.Fatalf("account %d was asked to pair again", i)
			}
		}
	}

	// A new account whose linking is abandoned leaves no record.
	cfg := clientConfig(t, srv)
	cfg.NewDevice = true
	cli, rec := newClient(t, st, cfg)
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
	if devs, _ := st.Devices(ctx); len(devs) != len(phones)+1 {
		t.Fatalf("while linking: %d devices, want %d", len(devs), len(phones)+1)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if devs, _ := st.Devices(ctx); len(devs) != len(phones) {
		t.Fatalf("after an abandoned link: %d devices, want %d", len(devs), len(phones))
	}
}
