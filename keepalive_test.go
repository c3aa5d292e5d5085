package walink_test

import (
	"context"
	"testing"
	"time"

	"github.com/walinkdev/walink"
)

// TestKeepaliveGivesUp: unanswered pings are retried at the keepalive
// interval and, once they have failed for KeepaliveGiveUp, the client
// drops the connection and reconnects; answered pings keep it.
func TestKeepaliveGivesUp(t *testing.T) {
	fs := newFakeServer(t)
	st, _ := pairedStore(t)
	cfg := fs.config()
	cfg.Reconnect = walink.ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}
	// Wide margins: a loaded 2-core CI machine can delay a timer by tens
	// of milliseconds.
	cfg.KeepaliveMin, cfg.KeepaliveMax = 40*time.Millisecond, 60*time.Millisecond
	cfg.KeepaliveTimeout = 50 * time.Millisecond
	cfg.KeepaliveGiveUp = 600 * time.Millisecond
	cli, rec := newClient(t, st, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	fc := fs.accept()
	fc.login()
	from := 0
	waitFor[walink.Connected](t, rec, &from, 5*time.Second)

	// Answered: the connection outlives several give-up periods.
	answered := 0
	for start := time.Now(); time.Since(start) < 3*cfg.KeepaliveGiveUp; answered++ {
		p := fc.next("ping", isPing)
		fc.send(iqResult(p.Attr("id")))
	}
	if !cli.IsConnected() || answered < 5 {
		t.Fatalf("connected %v after %d answered pings", cli.IsConnected(), answered)
	}

	// Unanswered: pings go on until the give-up, then a reconnect. (The
	// last answer came just before start, hence the slack.)
	start := time.Now()
	unanswered := 0
	for done := false; !done; {
		select {
		case n, ok := <-fc.in:
			if !ok {
				done = true
			} else if isPing(n) {
				unanswered++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("connection kept after pings failed")
		}
	}
	if took := time.Since(start); took < cfg.KeepaliveGiveUp/2 || unanswered < 2 {
		t.Fatalf("dropped after %v and %d unanswered pings", took, unanswered)
	}
	waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
	fc2 := fs.accept()
	fc2.login()
	waitFor[walink.Connected](t, rec, &from, 5*time.Second)

	// Close with a ping outstanding joins its goroutine.
	fc2.next("ping", isPing)
	cli.Close()
	// A joined goroutine may still be returning: allow it 100 ms.
	if left := leftGoroutines(100*time.Millisecond, "walink.(*"); left != "" {
		t.Fatalf("goroutines left after Close:\n%s", left)
	}
}
