package bench

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite"

	"github.com/walinkdev/walink/watest"
)

// These tests point an unmodified whatsmeow client at watest: they are the
// interoperability check behind the sessions benchmark, and they pin down
// where the two disagree (see NOTES.md).

var wmRootMu sync.Mutex // whatsmeow.WACertPubKey is a package variable

func startWatest(t *testing.T, qrRefresh bool) *watest.Server {
	t.Helper()
	sc := watest.DefaultScenario()
	sc.QRRefresh = qrRefresh
	sc.FirstStanzaDelayMS = 0
	srv, err := watest.Start(context.Background(), watest.Config{Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// newWhatsmeow returns an unpaired whatsmeow client whose websocket goes to
// srv and which trusts srv's root.
func newWhatsmeow(t *testing.T, srv *watest.Server) (*whatsmeow.Client, <-chan any) {
	t.Helper()
	wmRootMu.Lock()
	copy(whatsmeow.WACertPubKey[:], srv.RootKey().Bytes())
	wmRootMu.Unlock()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "wm.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := sqlstore.NewWithDB(db, "sqlite", nil)
	if err := c.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, u.Host)
	}
	hc := &http.Client{Transport: &http.Transport{DialTLSContext: dial, DialContext: dial}}
	cli := whatsmeow.NewClient(c.NewDevice(), waLog.Noop)
	cli.SetWebsocketHTTPClient(hc)
	cli.SetPreLoginHTTPClient(hc)
	evs := make(chan any, 256)
	cli.AddEventHandler(func(e any) {
		select {
		case evs <- e:
		default:
		}
	})
	t.Cleanup(cli.Disconnect)
	return cli, evs
}

func waitEvent[T any](t *testing.T, evs <-chan any, d time.Duration) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e := <-evs:
			if v, ok := e.(T); ok {
				return v
			}
		case <-timer.C:
			var zero T
			t.Fatalf("timed out waiting for %T", zero)
			return zero
		}
	}
}

// drain reads the QR channel to its end: whatsmeow's emitter blocks on it,
// and with it the client's event handling.
func drain(qr <-chan whatsmeow.QRChannelItem) {
	for range qr {
	}
}

func TestWhatsmeowQRPairing(t *testing.T) {
	srv := startWatest(t, false)
	cli, evs := newWhatsmeow(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qr
	if item.Event != whatsmeow.QRChannelEventCode {
		t.Fatalf("first QR item %+v", item)
	}
	go drain(qr)
	dev, err := srv.Phone("15551230001").ScanQR(ctx, item.Code)
	if err != nil {
		t.Fatalf("watest refused whatsmeow's QR: %v", err)
	}
	ps := waitEvent[*events.PairSuccess](t, evs, 30*time.Second)
	if ps.ID != wmJID(dev) {
		t.Fatalf("whatsmeow paired as %v, phone linked %v", ps.ID, dev)
	}
	waitEvent[*events.Connected](t, evs, 30*time.Second)
	if !cli.IsLoggedIn() {
		t.Fatal("not logged in")
	}
}

// TestWhatsmeowQRRefresh documents a disagreement: whatsmeow (pinned)
// ignores companion_reg_refresh, so it keeps showing the retired QR and
// never pairs with a server that sends it (watest's default, CHANGES-2026
// §1). The test fails if that changes, so the note can be updated.
func TestWhatsmeowQRRefresh(t *testing.T) {
	srv := startWatest(t, true)
	cli, _ := newWhatsmeow(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qr
	if _, err := srv.Phone("15551230002").ScanQR(ctx, item.Code); !errors.Is(err, watest.ErrRescan) {
		t.Fatalf("first scan: %v, want ErrRescan", err)
	}
	select {
	case item := <-qr:
		t.Fatalf("whatsmeow now reacts to companion_reg_refresh (%+v): update NOTES.md and the sessions runs", item)
	case <-time.After(2 * time.Second):
	}
}

func TestWhatsmeowPairCode(t *testing.T) {
	srv := startWatest(t, false)
	cli, evs := newWhatsmeow(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	<-qr // pair-device arrived: the connection can ask for a code
	go drain(qr)
	const phone = "15551230003"
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatalf("companion_hello refused: %v", err)
	}
	dev, err := srv.Phone(phone).EnterCode(ctx, code)
	if err != nil {
		t.Fatalf("phone entering whatsmeow's code %q: %v", code, err)
	}
	ps := waitEvent[*events.PairSuccess](t, evs, 30*time.Second)
	if ps.ID != wmJID(dev) {
		t.Fatalf("whatsmeow paired as %v, phone linked %v", ps.ID, dev)
	}
	waitEvent[*events.Connected](t, evs, 30*time.Second)
}
