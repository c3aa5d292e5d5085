package walink_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/waproto"
	"github.com/walinkdev/walink/watest"
)

// TestUnconfirmedRefusedIsDropped: a session stored before the pairing
// reply reached the server, refused at login (401), is deleted without a
// LoggedOut or Disconnected event, and the client pairs anew at once.
func TestUnconfirmedRefusedIsDropped(t *testing.T) {
	for _, refusal := range []binxml.Node{
		{Tag: "failure", Attrs: []binxml.Attr{binxml.A("reason", "401")}},
		{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", "401")}, Children: []binxml.Node{{Tag: "conflict", Attrs: []binxml.Attr{binxml.A("type", "device_removed")}}}},
	} {
		runSync(t, refusal.Tag, func(t *testing.T) {
			fs := newPipeFakeServer(t)
			st, d := pairedStore(t)
			d.Unconfirmed = true
			if err := st.PutDevice(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			cli, rec := newClient(t, st, fs.config()) // reconnect disabled: pairing anew is not a reconnect
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			fc := fs.accept()
			if !fc.hello.ClientStatic.Equal(d.NoiseKey.Public) {
				t.Fatal("did not log in with the unconfirmed session")
			}
			fc.send(refusal)
			fc2 := fs.accept()
			fc2.registration() // fails the test unless it is a registration
			if fc2.hello.ClientStatic.Equal(d.NoiseKey.Public) {
				t.Fatal("pairs anew with the refused device's noise key")
			}
			if _, err := st.Device(ctx, d.NoiseKey.Public); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("refused unconfirmed session still stored: %v", err)
			}
			for _, e := range rec.all() {
				switch e.(type) {
				case walink.LoggedOut, walink.Disconnected:
					t.Fatalf("unexpected %T for a session that never was: %s", e, describe(rec.all()))
				}
			}
			if cli.IsLoggedIn() {
				t.Fatal("IsLoggedIn after the unconfirmed session was dropped")
			}
		})
	}
}

// TestUnconfirmedUntilServerConfirms: the session is stored Unconfirmed
// before the reply and confirmed by the 515 (normal path) or by the login
// that follows a drop right before the 515.
func TestUnconfirmedUntilServerConfirms(t *testing.T) {
	for _, drop := range []string{"", watest.DropBefore515} {
		runSync(t, "drop="+drop, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sc := watest.DefaultScenario()
			sc.Faults.DropAfter = drop
			srv := startServerPipe(t, &sc)
			st := &watchStore{Store: memstore.New()}
			cfg := clientConfig(t, srv)
			cfg.Reconnect = walink.ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
			cli, rec := newClient(t, st, cfg)
			from := 0
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			qr := waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
			scanQR(t, ctx, srv.Phone(testPhone), rec, &from, qr.Code)
			waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
			waitFor[walink.Connected](t, rec, &from, 10*time.Second)
			if !st.sawUnconfirmed() {
				t.Error("the session was never stored Unconfirmed before the reply")
			}
			devs, err := st.Devices(ctx)
			if err != nil || len(devs) != 1 {
				t.Fatalf("devices = %d, %v", len(devs), err)
			}
			if !devs[0].Linked() {
				t.Fatalf("connected session still unconfirmed (paired %v)", devs[0].Paired())
			}
		})
	}
}

// watchStore records whether a paired device was ever put Unconfirmed.
type watchStore struct {
	store.Store
	unconfirmed atomic.Bool
}

func (w *watchStore) PutDevice(ctx context.Context, d *store.Device) error {
	if d.Paired() && d.Unconfirmed {
		w.unconfirmed.Store(true)
	}
	return w.Store.PutDevice(ctx, d)
}

func (w *watchStore) sawUnconfirmed() bool { return w.unconfirmed.Load() }

// TestPairConfirmTimeout: a server that takes the pairing reply but never
// sends the 515 does not leave the client waiting: after
// PairConfirmTimeout it restarts and logs in with the unconfirmed session,
// and a successful login confirms it.
func TestPairConfirmTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		st := memstore.New()
		cfg := fs.config()
		cfg.PairConfirmTimeout = 300 * time.Millisecond
		cli, rec := newClient(t, st, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		from := 0
		ident, qr := fc.showQR(rec, &from)
		account, _ := keys.NewKeyPair(rand.Reader)
		container := signIdentity(t, account, ident, qr, 5)
		dev := jid.NewAD(testPhone, 5, jid.DefaultUserServer)
		fc.send(pairSuccessIQ("ps-1", container, dev))
		if reply := fc.next("pair-success reply", isIQ("ps-1")); reply.Attr("type") != "result" {
			t.Fatalf("reply = %v", reply)
		}
		waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
		d, err := st.DeviceByJID(ctx, dev)
		if err != nil || !d.Unconfirmed {
			t.Fatalf("stored session before the 515: unconfirmed=%v, err %v", d != nil && d.Unconfirmed, err)
		}
		// No 515: the client must come back on its own with a login.
		start := time.Now()
		fc2 := fs.accept()
		if waited := time.Since(start); waited > 5*time.Second {
			t.Fatalf("restarted only after %v", waited)
		}
		var p waproto.ClientPayload
		if err := proto.Unmarshal(fc2.hello.Payload, &p); err != nil || p.GetUsername() == 0 {
			t.Fatalf("second connection is not a login: %v (%v)", &p, err)
		}
		for _, e := range rec.all() {
			if _, ok := e.(walink.Disconnected); ok {
				t.Fatal("the confirm restart surfaced as Disconnected")
			}
		}
	})
}
