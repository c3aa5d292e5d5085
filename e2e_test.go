package walink_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

const testPhone = "15551234567"

// recorder collects events and lets tests wait for one of a type.
type recorder struct {
	mu     sync.Mutex
	events []walink.Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{})} }

func (r *recorder) handle(e walink.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []walink.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]walink.Event(nil), r.events...)
}

// waitFor returns the first event at index >= *from matching T, advancing
// *from past it.
func waitFor[T walink.Event](t *testing.T, r *recorder, from *int, timeout time.Duration) T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := *from; i < len(r.events); i++ {
			if e, ok := r.events[i].(T); ok {
				*from = i + 1
				r.mu.Unlock()
				return e
			}
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			var zero T
			t.Fatalf("timed out waiting for %T; events: %s", zero, describe(r.all()))
			return zero
		}
	}
}

func describe(es []walink.Event) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("%T ", e)
	}
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("WALINK_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startServer(t *testing.T, sc *watest.Scenario) *watest.Server {
	t.Helper()
	srv, err := watest.Start(context.Background(), watest.Config{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func clientConfig(t *testing.T, srv *watest.Server) walink.Config {
	cfg := walink.Config{
		ServerURL:  srv.URL(),
		ServerRoot: srv.RootKey(),
		Logger:     testLogger(t),
		Reconnect:  walink.ReconnectPolicy{MinDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond},
	}
	if dial, ok := pipeDialers.Load(srv); ok {
		cfg.Dial = dial.(func(context.Context) (net.Conn, error))
	}
	return cfg
}

func newClient(t *testing.T, st store.Store, cfg walink.Config) (*walink.Client, *recorder) {
	t.Helper()
	cli := walink.NewClient(st, cfg)
	rec := newRecorder()
	cli.AddEventHandler(rec.handle)
	t.Cleanup(func() { cli.Close() })
	return cli, rec
}

// scanQR scans the code like a user would: a first scan that is retired
// by companion_reg_refresh is repeated with the re-rendered code.
func scanQR(t *testing.T, ctx context.Context, phone *watest.Phone, rec *recorder, from *int, code string) jid.JID {
	t.Helper()
	for range 3 {
		dev, err := phone.ScanQR(ctx, code)
		if err == nil {
			return dev
		}
		if !errors.Is(err, watest.ErrRescan) {
			t.Fatalf("ScanQR: %v", err)
		}
		code = waitFor[walink.PairingQRCode](t, rec, from, 5*time.Second).Code
	}
	t.Fatal("ScanQR kept asking for a rescan")
	return jid.JID{}
}

func linkByQR(t *testing.T, ctx context.Context, srv *watest.Server, cli *walink.Client, rec *recorder, from *int) walink.PairSuccess {
	t.Helper()
	if err := cli.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	qr := waitFor[walink.PairingQRCode](t, rec, from, 5*time.Second)
	if qr.Timeout <= 0 {
		t.Fatalf("QR timeout %v", qr.Timeout)
	}
	dev := scanQR(t, ctx, srv.Phone(testPhone), rec, from, qr.Code)
	ps := waitFor[walink.PairSuccess](t, rec, from, 5*time.Second)
	if ps.ID != dev {
		t.Fatalf("PairSuccess.ID = %v, phone linked %v", ps.ID, dev)
	}
	waitFor[walink.Connected](t, rec, from, 10*time.Second)
	return ps
}

func TestE2EQRLinkReconnectLogout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, nil)
	st := memstore.New()
	cfg := clientConfig(t, srv)
	cli, rec := newClient(t, st, cfg)
	from := 0
	ps := linkByQR(t, ctx, srv, cli, rec, &from)
	if !cli.IsLoggedIn() || !cli.IsConnected() || cli.ID() != ps.ID {
		t.Fatal("not logged in and connected after pairing")
	}
	if ps.ID.User != testPhone || ps.ID.Device == 0 || ps.LID.IsEmpty() || ps.Platform == "" {
		t.Fatalf("PairSuccess = %+v", ps)
	}
	for _, e := range rec.all() {
		if _, ok := e.(walink.PairError); ok {
			t.Fatalf("unexpected PairError: %+v", e)
		}
	}
	d, err := st.DeviceByJID(ctx, ps.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.LID != ps.LID || len(d.Account) == 0 || d.PrimaryIdentity.IsZero() || d.Platform != ps.Platform || d.LinkedAt.IsZero() {
		t.Fatalf("stored session incomplete: %+v", d)
	}
	if !d.PrimaryIdentity.Equal(srv.Phone(testPhone).AccountKey()) {
		t.Fatal("stored primary identity is not the phone's account key")
	}
	if n, _ := st.PreKeyCount(ctx, d.NoiseKey.Public); n != 812 {
		t.Fatalf("stored pre-keys = %d, want 812", n)
	}
	if lid, err := st.LIDForPhone(ctx, ps.ID.ToNonAD()); err != nil || lid.User != ps.LID.User {
		t.Fatalf("LID mapping = %v, %v", lid, err)
	}

	// A new client ("process") on the same store logs in without pairing.
	cli.Close()
	cli2, rec2 := newClient(t, st, cfg)
	from2 := 0
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.Connected](t, rec2, &from2, 10*time.Second)
	for _, e := range rec2.all() {
		switch e.(type) {
		case walink.PairingQRCode, walink.PairSuccess:
			t.Fatalf("saved session paired again: %T", e)
		}
	}

	// Logout: the server is told, the store is emptied, the next connect pairs.
	if err := cli2.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	lo := waitFor[walink.LoggedOut](t, rec2, &from2, 5*time.Second)
	if lo.OnConnect || lo.Reason != walink.ReasonLoggedOut {
		t.Fatalf("LoggedOut = %+v", lo)
	}
	if cli2.IsLoggedIn() {
		t.Fatal("still logged in after Logout")
	}
	if _, err := st.DeviceByJID(ctx, ps.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session survived logout: %v", err)
	}
	for _, di := range srv.Phone(testPhone).Devices() {
		if di.JID == ps.ID {
			t.Fatal("phone still lists the logged-out device")
		}
	}
	if err := cli2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor[walink.PairingQRCode](t, rec2, &from2, 5*time.Second)
}
