package watest

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
)

// sessionGoroutines counts the goroutines running or waiting in a
// session's read loop.
func sessionGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "watest.(*session).") {
			n++
		}
	}
	return n
}

// awaitNoSessionGoroutines waits until no session holds a goroutine.
func awaitNoSessionGoroutines(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for sessionGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d session goroutines, want none (parked)", what, sessionGoroutines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIdleSessionsParked: idle connections (registrations waiting for a
// scan, a logged-in device) hold no goroutine; a parked session still
// answers the client, still gets the client's answer to a server IQ, and
// a kick's linger still closes a socket the client leaves open. Close
// with sessions parked ends them all (startServer checks for leaks).
func TestIdleSessionsParked(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connections park in an epoll poller on Linux only")
	}
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false; sc.LingerMS = 200 }, Config{})
	ctx := testCtx(t)
	for range 5 {
		c := newCompanion(t)
		w := c.mustConnect(ctx, s, c.registrationPayload())
		w.pairDevice()
	}
	awaitNoSessionGoroutines(t, "5 registrations waiting for a scan")

	c := newCompanion(t)
	linkQR(ctx, t, s, c)
	w := c.login(ctx, s)
	awaitNoSessionGoroutines(t, "logged in")
	id := w.iq("w:p", "get")
	w.reply(id)
	awaitNoSessionGoroutines(t, "after a stanza")

	done := make(chan error, 1)
	go func() { done <- s.Ping(ctx, c.id) }()
	p := w.expect("server ping", func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("xmlns") == "urn:xmpp:ping" })
	w.ackResult(p)
	if err := <-done; err != nil {
		t.Fatalf("ping of a parked session: %v", err)
	}
	awaitNoSessionGoroutines(t, "after a ping")

	// Kicked while parked: the linger deadline must still end the
	// connection the client does not close.
	if err := s.Kick(ctx, c.id, "515"); err != nil {
		t.Fatal(err)
	}
	w.expect("515", isTag("stream:error"))
	start := time.Now()
	if err := w.waitClosed(3 * time.Second); err != nil {
		t.Fatalf("kicked parked session: %v after %v", err, time.Since(start))
	}
}
