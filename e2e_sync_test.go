package walink_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

// The end-to-end suite over the in-memory connection: client and watest
// meet over net.Pipe inside a synctest bubble, so the protocol's real
// timeouts (60 s QR refs, 180 s codes, 20–30 s keepalive) pass in no
// wall time and every wait is for an event, never for a guess.

func TestSyncE2EQRLinkReconnectLogout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		srv, cfg := startPipeServer(t, nil)
		st := memstore.New()
		cli, rec := newClient(t, st, cfg)
		from := 0
		ps := linkByQR(t, ctx, srv, cli, rec, &from)
		if !cli.IsLoggedIn() || !cli.IsConnected() || cli.ID() != ps.ID {
			t.Fatal("not logged in and connected after pairing")
		}
		d, err := st.DeviceByJID(ctx, ps.ID)
		if err != nil || d.Unconfirmed || n(st.PreKeyCount(ctx, d.NoiseKey.Public)) != 812 {
			t.Fatalf("stored session: %+v, %v", d, err)
		}

		// A kick (stream error 503) reconnects and logs in again.
		if err := srv.Kick(ctx, ps.ID, "503"); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.Disconnected](t, rec, &from, time.Minute)
		waitFor[walink.Connected](t, rec, &from, time.Minute)

		if err := cli.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor[walink.LoggedOut](t, rec, &from, time.Minute)
		if _, err := st.DeviceByJID(ctx, ps.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session survived logout: %v", err)
		}
		cli.Close()
	})
}

func n(c int, _ error) int { return c }

// QR refs with the real timetable: 60 s, then 20 s each; all spent,
// QRCodesExpired and the disconnect, nothing after.
func TestSyncE2EQRCodesExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, cfg := startPipeServer(t, nil)
		cli, rec := newClient(t, memstore.New(), cfg)
		if err := cli.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		from := 0
		waitFor[walink.PairingQRCode](t, rec, &from, time.Minute)
		start := time.Now() // the first ref is shown from here
		waitFor[walink.QRCodesExpired](t, rec, &from, 10*time.Minute)
		if took := time.Since(start); took != 160*time.Second {
			t.Fatalf("refs spent after %v, want 60 s + 5 × 20 s", took)
		}
		waitFor[walink.Disconnected](t, rec, &from, time.Minute)
		var timeouts []time.Duration
		for _, e := range rec.all() {
			if q, ok := e.(walink.PairingQRCode); ok {
				timeouts = append(timeouts, q.Timeout)
				if !strings.HasPrefix(q.Code, pairing.QRURLPrefix) {
					t.Fatalf("QR %q", q.Code)
				}
			}
		}
		if len(timeouts) != 6 || timeouts[0] != 60*time.Second || timeouts[1] != 20*time.Second {
			t.Fatalf("QR timeouts %v", timeouts)
		}
		synctest.Wait()
		if len(rec.all()) != from {
			t.Fatalf("events after the disconnect: %s", describe(rec.all()[from:]))
		}
		cli.Close()
	})
}

// A pair code typed on the virtual phone links the device.
func TestSyncE2EPairCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		srv, cfg := startPipeServer(t, nil)
		cli, rec := newClient(t, memstore.New(), cfg)
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: "+" + testPhone})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Phone(testPhone).EnterCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		from := 0
		waitFor[walink.PairSuccess](t, rec, &from, time.Minute)
		waitFor[walink.Connected](t, rec, &from, time.Minute)
		cli.Close()
	})
}

// An unused pair code outlives the QR refs and expires at 180 s, which
// then ends the connection.
func TestSyncE2EPairCodeExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		_, cfg := startPipeServer(t, nil)
		cli, rec := newClient(t, memstore.New(), cfg)
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: "+" + testPhone}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		from := 0
		waitFor[walink.QRCodesExpired](t, rec, &from, 10*time.Minute)
		waitFor[walink.Disconnected](t, rec, &from, 10*time.Minute)
		if took := time.Since(start); took != 180*time.Second {
			t.Fatalf("disconnected %v after the code, want 180 s", took)
		}
		cli.Close()
	})
}

// Keepalive with the real interval: pings every 20–30 s, answered by the
// server, keep the connection for an hour.
func TestSyncE2EKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		srv, cfg := startPipeServer(t, nil)
		cli, rec := newClient(t, memstore.New(), cfg)
		from := 0
		linkByQR(t, ctx, srv, cli, rec, &from)
		time.Sleep(time.Hour) // synthetic: the bubble's clock jumps
		pings := 0
		for _, e := range srv.Events() {
			if e.Dir == watest.DirIn && e.Tag == "iq" && e.Node.Attr("xmlns") == "w:p" {
				pings++
			}
		}
		if pings < 120 || pings > 180 || !cli.IsConnected() {
			t.Fatalf("%d pings in an hour, connected %v", pings, cli.IsConnected())
		}
		synctest.Wait()
		if len(rec.all()) != from {
			t.Fatalf("events while idle: %s", describe(rec.all()[from:]))
		}
		cli.Close()
	})
}
