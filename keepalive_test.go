package walink_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/binxml"
)

func iqResult(id string, children ...binxml.Node) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{srvFrom, binxml.A("id", id), binxml.A("type", "result")}, Children: children}
}

func isPing(n binxml.Node) bool {
	return n.Tag == "iq" && n.Attr("xmlns") == "w:p" && n.Attr("type") == "get"
}

// login plays the server's side of a paired login: <success>, a pre-key
// count that needs no upload, and the answer to leaving passive mode.
func (fc *fakeConn) login() {
	fc.t.Helper()
	fc.send(binxml.Node{Tag: "success", Attrs: []binxml.Attr{binxml.A("t", "1795597893")}})
	count := fc.next("pre-key count", func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("xmlns") == "encrypt" })
	fc.send(iqResult(count.Attr("id"), binxml.Node{Tag: "count", Attrs: []binxml.Attr{binxml.A("value", "50")}}))
	active := fc.next("active", func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("xmlns") == "passive" })
	fc.send(iqResult(active.Attr("id")))
}

// ourGoroutines lists the live goroutines running walink code.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	var ours []string
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "walink.(*") {
			ours = append(ours, g)
		}
	}
	return ours
}

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
	if ours := ourGoroutines(); len(ours) > 0 {
		time.Sleep(100 * time.Millisecond) // a joined goroutine may still be returning
		if ours = ourGoroutines(); len(ours) > 0 {
			t.Fatalf("goroutines left after Close:\n%s", strings.Join(ours, "\n\n"))
		}
	}
}
