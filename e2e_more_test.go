package walink_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

func TestE2EPhoneUnlinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv := startServerPipe(t, nil)
		st := memstore.New()
		cfg := clientConfig(t, srv)
		cli, rec := newClient(t, st, cfg)
		from := 0
		ps := linkByQR(t, ctx, srv, cli, rec, &from)

		if err := srv.Phone(testPhone).Unlink(ctx, ps.ID.Device); err != nil {
			t.Fatal(err)
		}
		lo := waitFor[walink.LoggedOut](t, rec, &from, 5*time.Second)
		if lo.OnConnect || !lo.Reason.IsLoggedOut() {
			t.Fatalf("LoggedOut = %+v", lo)
		}
		waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
		if cli.IsLoggedIn() {
			t.Fatal("still logged in after unlink")
		}
		if _, err := st.DeviceByJID(ctx, ps.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session survived unlink: %v", err)
		}
		// No reconnect after a logout: nothing but silence follows.
		quiet(time.Hour)
		for _, e := range rec.all()[from:] {
			t.Fatalf("event after LoggedOut: %T", e)
		}
	})
}

// A stale session (device unlinked while the client was away) is refused
// at login: LoggedOut{OnConnect: true}, store cleared.
func TestE2ELoginAfterUnlink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	cfg := clientConfig(t, srv)
	cli, rec := newClient(t, st, cfg)
	from := 0
	ps := linkByQR(t, ctx, srv, cli, rec, &from)
	cli.Close()
	// The companion is gone, so the server may fail to tell it; what
	// matters is that the phone no longer lists it.
	_ = srv.Phone(testPhone).Unlink(ctx, ps.ID.Device)
	for _, di := range srv.Phone(testPhone).Devices() {
		if di.JID == ps.ID {
			t.Fatal("phone still lists the unlinked device")
		}
	}
	cli2, rec2 := newClient(t, st, cfg)
	from2 := 0
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	lo := waitFor[walink.LoggedOut](t, rec2, &from2, 5*time.Second)
	if !lo.OnConnect || lo.Reason != walink.ReasonLoggedOut {
		t.Fatalf("LoggedOut = %+v", lo)
	}
	if devs, _ := st.Devices(ctx); len(devs) != 0 {
		t.Fatalf("store still holds %d devices", len(devs))
	}
	// The next connect makes a fresh device and pairs.
	waitFor[walink.Disconnected](t, rec2, &from2, 5*time.Second)
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.PairingQRCode](t, rec2, &from2, 5*time.Second)
}

func TestE2EQRCodesExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv := startServerPipe(t, nil)
		cfg := clientConfig(t, srv)
		cfg.QRFirstTimeout = 150 * time.Millisecond
		cfg.QRNextTimeout = 50 * time.Millisecond
		cli, rec := newClient(t, memstore.New(), cfg)
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.QRCodesExpired](t, rec, &from, 5*time.Second)
		waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
		var qrs []walink.PairingQRCode
		refs := map[string]bool{}
		for _, e := range rec.all() {
			if q, ok := e.(walink.PairingQRCode); ok {
				qrs = append(qrs, q)
				refs[strings.SplitN(strings.TrimPrefix(q.Code, pairing.QRURLPrefix), ",", 2)[0]] = true
			}
		}
		if len(qrs) != 6 || len(refs) != 6 {
			t.Fatalf("got %d QR events over %d refs, want 6 and 6", len(qrs), len(refs))
		}
		near := func(got, want time.Duration) bool { return got <= want && got > want-20*time.Millisecond }
		if !near(qrs[0].Timeout, cfg.QRFirstTimeout) || !near(qrs[1].Timeout, cfg.QRNextTimeout) {
			t.Fatalf("timeouts %v, %v", qrs[0].Timeout, qrs[1].Timeout)
		}
		if !strings.HasPrefix(qrs[0].Code, pairing.QRURLPrefix) || !strings.HasSuffix(qrs[0].Code, ",1") {
			t.Fatalf("QR %q is not the current 5-field form", qrs[0].Code)
		}
		if cli.IsConnected() {
			t.Fatal("still connected")
		}
		quiet(time.Hour)
		if n := len(rec.all()); n != from {
			t.Fatalf("events after the disconnect: %s", describe(rec.all()[from:]))
		}
	})
}

func TestE2EClientOutdated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sc := watest.DefaultScenario()
		sc.MinClientVersion = "2.3000.1045368834"
		srv := startServerPipe(t, &sc)
		st := memstore.New()
		cfg := clientConfig(t, srv)
		cli, rec := newClient(t, st, cfg)
		from := 0
		ps := linkByQR(t, ctx, srv, cli, rec, &from)
		cli.Close()

		cfg.Version = "2.3000.1000000000"
		cli2, rec2 := newClient(t, st, cfg)
		from2 := 0
		if err := cli2.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		co := waitFor[walink.ClientOutdated](t, rec2, &from2, 5*time.Second)
		if !strings.Contains(co.Message, "Config.Version") {
			t.Fatalf("unhelpful message %q", co.Message)
		}
		waitFor[walink.Disconnected](t, rec2, &from2, 5*time.Second)
		if !cli2.IsLoggedIn() {
			t.Fatal("an outdated client must keep its session")
		}
		if _, err := st.DeviceByJID(ctx, ps.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestE2EKicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv := startServerPipe(t, nil)
		cli, rec := newClient(t, memstore.New(), clientConfig(t, srv))
		from := 0
		ps := linkByQR(t, ctx, srv, cli, rec, &from)

		// 515 is a silent restart: Connected again, no Disconnected.
		if err := srv.Kick(ctx, ps.ID, "515"); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.Connected](t, rec, &from, 5*time.Second)
		for _, e := range rec.all() {
			if _, ok := e.(walink.Disconnected); ok {
				t.Fatal("515 surfaced as Disconnected")
			}
		}
		// replaced: StreamReplaced and no reconnect.
		if err := srv.Kick(ctx, ps.ID, "replaced"); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.StreamReplaced](t, rec, &from, 5*time.Second)
		waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
		quiet(time.Hour)
		if cli.IsConnected() || len(rec.all()) != from {
			t.Fatalf("reconnected after replaced: %s", describe(rec.all()[from:]))
		}
		if !cli.IsLoggedIn() {
			t.Fatal("replaced must keep the session")
		}
	})
}

func TestE2EReconnectAfterDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	cli, rec := newClient(t, memstore.New(), clientConfig(t, srv))
	from := 0
	linkByQR(t, ctx, srv, cli, rec, &from)
	sc := srv.Scenario()
	sc.Faults.DropAfter = watest.DropLogin
	srv.SetScenario(sc)
	// Any unexpected end reconnects with backoff: make the server drop the
	// next login once, then behave.
	if err := srv.Kick(ctx, cli2JID(t, rec), "515"); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
	sc.Faults.DropAfter = ""
	srv.SetScenario(sc)
	waitFor[walink.Connected](t, rec, &from, 10*time.Second)
}

func cli2JID(t *testing.T, rec *recorder) (id jid.JID) {
	for _, e := range rec.all() {
		if ps, ok := e.(walink.PairSuccess); ok {
			return ps.ID
		}
	}
	t.Fatal("no PairSuccess")
	return
}

func TestE2EBadCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc := watest.DefaultScenario()
	sc.Faults.BadCert = true
	srv := startServer(t, &sc)
	cli, _ := newClient(t, memstore.New(), clientConfig(t, srv))
	if err := cli.Connect(ctx); err == nil {
		t.Fatal("connected to a server with a foreign certificate chain")
	}
}

// TestE2EKeepalive: once connected the client pings (w:p, no child) at the
// configured interval and the server's answers keep it connected.
func TestE2EKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv := startServerPipe(t, nil)
		cfg := clientConfig(t, srv)
		cfg.KeepaliveMin, cfg.KeepaliveMax = 30*time.Millisecond, 60*time.Millisecond
		cli, rec := newClient(t, memstore.New(), cfg)
		from := 0
		linkByQR(t, ctx, srv, cli, rec, &from)
		deadline := time.Now().Add(10 * time.Second)
		for {
			var pings []watest.Event
			for _, e := range srv.Events() {
				if e.Dir == watest.DirIn && e.Tag == "iq" && e.Node.Attr("xmlns") == "w:p" {
					pings = append(pings, e)
				}
			}
			if len(pings) >= 3 {
				for _, p := range pings {
					if p.Node.Attr("type") != "get" || len(p.Node.Children) != 0 {
						t.Fatalf("ping %v", p.XML)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d pings in 10 s", len(pings))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !cli.IsConnected() {
			t.Fatal("disconnected while pinging")
		}
	})
}

// TestE2ERemembersServer: a device linked against a non-default server
// reconnects there when the Config names no server.
func TestE2ERemembersServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	cli, rec := newClient(t, st, clientConfig(t, srv))
	from := 0
	ps := linkByQR(t, ctx, srv, cli, rec, &from)
	cli.Close()
	d, err := st.DeviceByJID(ctx, ps.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.ServerURL != srv.URL() || !d.ServerRoot.Equal(srv.RootKey()) {
		t.Fatalf("stored server %q %v", d.ServerURL, d.ServerRoot)
	}
	cli2, rec2 := newClient(t, st, walink.Config{Logger: testLogger(t)})
	from2 := 0
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.Connected](t, rec2, &from2, 10*time.Second)
}

// TestE2EDropsAroundPairing: the socket dying right before or after the
// 515 restart still ends in a logged-in session (the session was saved
// before the reply; the reconnect logs in).
func TestE2EDropsAroundPairing(t *testing.T) {
	for _, point := range []string{watest.DropBefore515, watest.DropAfter515} {
		runSync(t, point, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sc := watest.DefaultScenario()
			sc.Faults.DropAfter = point
			srv := startServerPipe(t, &sc)
			cli, rec := newClient(t, memstore.New(), clientConfig(t, srv))
			from := 0
			if err := cli.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			qr := waitFor[walink.PairingQRCode](t, rec, &from, 5*time.Second)
			scanQR(t, ctx, srv.Phone(testPhone), rec, &from, qr.Code)
			waitFor[walink.PairSuccess](t, rec, &from, 5*time.Second)
			sc.Faults.DropAfter = ""
			srv.SetScenario(sc)
			waitFor[walink.Connected](t, rec, &from, 10*time.Second)
		})
	}
}
