package walink_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/store/sqlite"
	"github.com/walinkdev/walink/watest"
)

func TestPairCodeOptionErrors(t *testing.T) {
	cli := walink.NewClient(memstore.New(), walink.Config{})
	defer cli.Close()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts walink.PairCodeOptions
		want error
	}{
		{"empty", walink.PairCodeOptions{}, walink.ErrPhoneNumberRequired},
		{"no digits", walink.PairCodeOptions{PhoneNumber: "+-() "}, walink.ErrPhoneNumberRequired},
		{"short", walink.PairCodeOptions{PhoneNumber: "+1 234 56"}, walink.ErrPhoneNumberTooShort},
		{"leading zero", walink.PairCodeOptions{PhoneNumber: "0155512345"}, walink.ErrPhoneNumberNotInternational},
		{"custom too short", walink.PairCodeOptions{PhoneNumber: testPhone, CustomCode: "ABCD123"}, walink.ErrInvalidCustomCode},
		{"custom with 0", walink.PairCodeOptions{PhoneNumber: testPhone, CustomCode: "ABCD1230"}, walink.ErrInvalidCustomCode},
		{"custom with O", walink.PairCodeOptions{PhoneNumber: testPhone, CustomCode: "ABCDOOOO"}, walink.ErrInvalidCustomCode},
		{"custom too long", walink.PairCodeOptions{PhoneNumber: testPhone, CustomCode: "ABCD12345"}, walink.ErrInvalidCustomCode},
		{"platform 0", walink.PairCodeOptions{PhoneNumber: testPhone, PlatformID: "0"}, walink.ErrInvalidPlatform},
		{"display without OS", walink.PairCodeOptions{PhoneNumber: testPhone, PlatformDisplay: "My Bot"}, walink.ErrInvalidPlatform},
		{"display unknown OS", walink.PairCodeOptions{PhoneNumber: testPhone, PlatformDisplay: "Chrome (FreeBSD)"}, walink.ErrInvalidPlatform},
		// Valid options on a client that never connected.
		{"not connected", walink.PairCodeOptions{PhoneNumber: "+1-555-123-4567", CustomCode: "abcd1234"}, walink.ErrNotConnected},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := cli.PairWithCode(ctx, c.opts); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			// Validate applies the same local checks without a connection.
			if err := c.opts.Validate(); c.want == walink.ErrNotConnected && err != nil || c.want != walink.ErrNotConnected && !errors.Is(err, c.want) {
				t.Fatalf("Validate = %v, want %v", err, c.want)
			}
		})
	}
}

func TestNormalizePhoneNumber(t *testing.T) {
	if n, err := walink.NormalizePhoneNumber("+1 (555) 123-4567"); err != nil || n != "15551234567" {
		t.Fatalf("= %q, %v", n, err)
	}
	if _, err := walink.NormalizePhoneNumber("0123456789"); !errors.Is(err, walink.ErrPhoneNumberNotInternational) {
		t.Fatal(err)
	}
}

func TestMissingPairingRef(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		cli, _ := newClient(t, memstore.New(), fs.config())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		fc.pairDevice()
		errCh := make(chan error, 1)
		go func() {
			_, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
			errCh <- err
		}()
		hello := fc.next("companion_hello", func(n binxml.Node) bool { return hasStage(n, "companion_hello") })
		fc.send(iqResult(hello.Attr("id")))
		if err := <-errCh; !errors.Is(err, walink.ErrMissingPairingRef) {
			t.Fatalf("err = %v", err)
		}
		// The failed request left nothing outstanding.
		go func() {
			_, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
			errCh <- err
		}()
		hello = fc.next("companion_hello", func(n binxml.Node) bool { return hasStage(n, "companion_hello") })
		fc.send(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{srvFrom, binxml.A("id", hello.Attr("id")), binxml.A("type", "error")},
			Children: []binxml.Node{{Tag: "error", Attrs: []binxml.Attr{binxml.A("code", "403"), binxml.A("text", "forbidden")}}}})
		var rej *walink.PairCodeRejectedError
		if err := <-errCh; !errors.As(err, &rej) || rej.Code != 403 || rej.Throttled {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	cli := walink.NewClient(memstore.New(), walink.Config{Version: "not-a-version"})
	if err := cli.Connect(ctx); !errors.Is(err, walink.ErrInvalidConfig) {
		t.Fatalf("bad version: %v", err)
	}
	cli.Close()
	cli = walink.NewClient(memstore.New(), walink.Config{})
	if err := cli.Logout(ctx); !errors.Is(err, walink.ErrNotLoggedIn) {
		t.Fatalf("Logout unpaired: %v", err)
	}
	if cli.IsLoggedIn() || cli.IsConnected() {
		t.Fatal("fresh client claims a session")
	}
	cli.Disconnect() // no-op
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := cli.Connect(ctx); !errors.Is(err, walink.ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
}

// TestConnectHonoursContext: Connect with a cancelled ctx fails and leaves
// the client able to connect again.
func TestConnectHonoursContext(t *testing.T) {
	fs := newFakeServer(t)
	cfg := fs.config()
	cli := walink.NewClient(memstore.New(), cfg)
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := cli.Connect(ctx); err == nil {
		t.Fatal("Connect with a cancelled ctx succeeded")
	}
	if err := cli.Connect(context.Background()); err != nil {
		t.Fatalf("Connect after a cancelled attempt: %v", err)
	}
}

// TestSQLiteNewProcess links by QR into a SQLite file and reconnects from
// the same file with a new client and a new store handle.
func TestSQLiteNewProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	path := filepath.Join(t.TempDir(), "walink.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientConfig(t, srv)
	cli, rec := newClient(t, st, cfg)
	from := 0
	ps := linkByQR(t, ctx, srv, cli, rec, &from)
	cli.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	d, err := st2.DeviceByJID(ctx, ps.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.LinkedAt.IsZero() || len(d.Account) == 0 {
		t.Fatalf("incomplete session in SQLite: %+v", d.ID)
	}
	cli2, rec2 := newClient(t, st2, cfg)
	from2 := 0
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.Connected](t, rec2, &from2, 10*time.Second)
	if !cli2.IsLoggedIn() {
		t.Fatal("not logged in from SQLite")
	}
	for _, e := range rec2.all() {
		if _, ok := e.(walink.PairingQRCode); ok {
			t.Fatal("paired again")
		}
	}
}

// TestNoGoroutineLeak runs a full link and logout and checks that Close
// leaves no goroutine of the client behind.
func TestNoGoroutineLeak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	cli := walink.NewClient(memstore.New(), clientConfig(t, srv))
	rec := newRecorder()
	cli.AddEventHandler(rec.handle)
	from := 0
	linkByQR(t, ctx, srv, cli, rec, &from)
	if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone}); !errors.Is(err, walink.ErrAlreadyPaired) {
		t.Fatal(err)
	}
	cli.Close()
	// No waiting: Close has joined every goroutine of the client.
	if left := ownGoroutines("walink.(*"); left != "" {
		t.Fatalf("goroutines left after Close:\n%s", left)
	}
}

func TestQRStringUsesStoredSecret(t *testing.T) {
	srv := startServer(t, nil)
	st := memstore.New()
	cfg := clientConfig(t, srv)
	var skew atomic.Int64 // the client's clock runs ahead by this much
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	cli, rec := newClient(t, st, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	from := 0
	ev1 := waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
	q1, err := pairing.ParseQR(ev1.Code)
	if err != nil {
		t.Fatal(err)
	}
	devs, _ := st.Devices(ctx)
	if len(devs) != 1 || devs[0].AdvSecret != q1.AdvSecret || !devs[0].NoiseKey.Public.Equal(q1.Noise) || !devs[0].IdentityKey.Public.Equal(q1.Identity) || q1.ClientType != "1" {
		t.Fatal("QR does not carry the stored keys and adv secret")
	}
	skew.Store(int64(10 * time.Second)) // 10 s of the first ref's 60 pass
	// The first scan is answered with companion_reg_refresh: the client
	// rotates and persists the secret and re-renders the same ref.
	if _, err := srv.Phone(testPhone).ScanQR(ctx, q1.String()); !errors.Is(err, watest.ErrRescan) {
		t.Fatalf("first scan: %v (want a rescan request)", err)
	}
	ev2 := waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
	q2, err := pairing.ParseQR(ev2.Code)
	if err != nil {
		t.Fatal(err)
	}
	devs, _ = st.Devices(ctx)
	if q2.Ref != q1.Ref || q2.AdvSecret == q1.AdvSecret || devs[0].AdvSecret != q2.AdvSecret {
		t.Fatal("reg refresh did not rotate+persist the secret on the same ref")
	}
	// The re-render keeps the ref's timer: it shows what is left of it.
	if ev1.Timeout <= 59*time.Second || ev2.Timeout > 50*time.Second || ev2.Timeout < 49*time.Second {
		t.Fatalf("timeouts %v then %v: the re-render restarted the ref's timer", ev1.Timeout, ev2.Timeout)
	}
}
