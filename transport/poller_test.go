//go:build linux

package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/transport"
)

// newPoller checks the test leaves no goroutine behind and returns a
// fixture and a Poller closed at cleanup (Close is idempotent, so a test
// may close it first).
func newPoller(t *testing.T) (*fixture, *transport.Poller) {
	t.Helper()
	checkGoroutines(t)
	f := newFixture(t)
	p, err := transport.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return f, p
}

// wsPairs opens n connections over Accept's WebSocket on a real socket and
// runs both handshakes on each: the clients, the server Conns, and the
// server's WebSocket streams (for deadlines).
func wsPairs(t *testing.T, f *fixture, n int) (clients, servers []*transport.Conn, raws []net.Conn) {
	t.Helper()
	wsURL, conns := acceptServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range n {
		cc, err := transport.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		sc := <-conns
		client, server, _ := handshakePair(t, f, cc, sc, f.clientConfig())
		clients, servers, raws = append(clients, client), append(servers, server), append(raws, sc)
	}
	return clients, servers, raws
}

// closePair closes a server Conn and its client, the client reading so
// that the closing handshake does not wait for its timeout.
func closePair(client, server *transport.Conn) {
	go client.ReadFrame()
	server.Close()
	client.Close()
}

// echo is a server connection served the way an idle-heavy server does:
// parked between frames, each frame echoed by a goroutine the poller
// starts.
type echo struct {
	c       *transport.Conn
	p       *transport.Poller
	resumes atomic.Int32
	parked  atomic.Int32 // Parks that reported true
	ended   chan error
}

func newEcho(c *transport.Conn, p *transport.Poller) *echo {
	return &echo{c: c, p: p, ended: make(chan error, 1)}
}

// wait parks the connection, or waits on a goroutine where it cannot.
func (e *echo) wait() {
	e.parked.Add(1) // before: the resume may run before Park returns
	if e.c.Park(e.p, e.next) {
		return
	}
	e.parked.Add(-1)
	go func() {
		e.c.AwaitReadable()
		e.read()
	}()
}

func (e *echo) next() {
	e.resumes.Add(1)
	e.read()
}

func (e *echo) read() {
	frame, err := e.c.ReadFrame()
	if err != nil {
		e.c.Close()
		e.ended <- err
		return
	}
	if err := e.c.WriteFrame(context.Background(), frame); err != nil {
		e.c.Close()
		e.ended <- err
		return
	}
	e.wait()
}

// TestParkIdleConns: connections parked in a Poller hold no goroutine
// while idle, each wakes for its own frames (sent in any order), parks
// again, and ends when its client closes.
func TestParkIdleConns(t *testing.T) {
	const n = 60
	f, p := newPoller(t)
	before := runtime.NumGoroutine()
	clients, servers, _ := wsPairs(t, f, n)
	echoes := make([]*echo, n)
	for i, s := range servers {
		echoes[i] = newEcho(s, p)
		if !s.Park(p, echoes[i].next) {
			t.Fatalf("conn %d: Park = false", i)
		}
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		t.Errorf("%d connections parked: %d goroutines, %d before", n, g, before)
	}
	ctx := context.Background()
	for round := range 3 {
		for k := range n {
			i := (k*7 + round) % n // not in the order they parked
			msg := fmt.Appendf(nil, "conn %d round %d %s", i, round, strings.Repeat("x", 50*i))
			if err := clients[i].WriteFrame(ctx, msg); err != nil {
				t.Fatal(err)
			}
			got, err := clients[i].ReadFrame()
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("conn %d round %d: echo %q, %v", i, round, got, err)
			}
		}
	}
	// Every echo parked again: no goroutine per connection.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		t.Errorf("after the rounds: %d goroutines, %d before", g, before)
	}
	for i, c := range clients {
		done := make(chan error, 1)
		go func() { done <- c.Close() }()
		if err := <-echoes[i].ended; !errors.Is(err, io.EOF) {
			t.Errorf("conn %d: server read after the client closed: %v", i, err)
		}
		if err := <-done; err != nil {
			t.Errorf("conn %d: client Close: %v", i, err)
		}
		if r, pk := echoes[i].resumes.Load(), echoes[i].parked.Load()+1; r != pk {
			t.Errorf("conn %d: %d resumes for %d parkings", i, r, pk)
		}
	}
}

// TestParkClose: closing a parked Conn resumes it exactly once, even when
// a frame arrives at the same moment, and its read reports the close.
func TestParkClose(t *testing.T) {
	const n = 30
	f, p := newPoller(t)
	clients, servers, _ := wsPairs(t, f, n)
	for i, s := range servers {
		var resumes atomic.Int32
		got := make(chan error, 2)
		if !s.Park(p, func() {
			resumes.Add(1)
			_, err := s.ReadFrame()
			got <- err
		}) {
			t.Fatalf("conn %d: Park = false", i)
		}
		// The client reads, so that the closing handshake completes.
		go clients[i].ReadFrame()
		if i%2 == 0 {
			go clients[i].WriteFrame(context.Background(), []byte("racing the close"))
		}
		if err := s.Close(); err != nil {
			t.Errorf("conn %d: Close: %v", i, err)
		}
		select {
		case err := <-got:
			// Odd connections got no frame: their read sees the close. An
			// even one may have read the racing frame first.
			if err == nil && i%2 == 1 {
				t.Errorf("conn %d: read after Close succeeded", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("conn %d: not resumed after Close", i)
		}
		time.Sleep(time.Millisecond)
		if r := resumes.Load(); r != 1 {
			t.Errorf("conn %d: resumed %d times", i, r)
		}
		if s.Park(p, func() { t.Error("resumed a closed Conn") }) {
			t.Errorf("conn %d: Park after Close = true", i)
		}
	}
}

// TestPollerClose: closing the Poller resumes what is parked (it then
// reads the ordinary way) and refuses later Parks.
func TestPollerClose(t *testing.T) {
	const n = 10
	f, p := newPoller(t)
	clients, servers, _ := wsPairs(t, f, n)
	frames := make(chan string, n)
	var parkedAgain atomic.Int32
	for i, s := range servers {
		if !s.Park(p, func() {
			if s.Park(p, func() {}) {
				parkedAgain.Add(1)
			}
			b, err := s.ReadFrame()
			if err != nil {
				frames <- err.Error()
				return
			}
			frames <- string(b)
		}) {
			t.Fatalf("conn %d: Park = false", i)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.Close() // idempotent
	for i, c := range clients {
		if err := c.WriteFrame(context.Background(), fmt.Appendf(nil, "after close %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range n {
		select {
		case s := <-frames:
			seen[s] = true
		case <-time.After(5 * time.Second):
			t.Fatal("a connection parked when the poller closed did not read")
		}
	}
	for i := range n {
		if !seen[fmt.Sprintf("after close %d", i)] {
			t.Errorf("frame of conn %d not read: %v", i, seen)
		}
	}
	if parkedAgain.Load() != 0 {
		t.Errorf("%d Parks on a closed poller reported true", parkedAgain.Load())
	}
	var nilPoller *transport.Poller
	if servers[0].Park(nilPoller, func() {}) {
		t.Error("Park on a nil poller = true")
	}
	for i := range clients {
		closePair(clients[i], servers[i])
	}
}

// TestParkReadDeadline: a read deadline set on the stream of a parked
// Conn resumes it (the poller would not honour the deadline), Park
// refuses while the deadline is set, and the read then times out.
func TestParkReadDeadline(t *testing.T) {
	f, p := newPoller(t)
	clients, servers, raws := wsPairs(t, f, 1)
	s := servers[0]
	defer closePair(clients[0], s)
	res := make(chan error, 1)
	var parkedAgain bool
	if !s.Park(p, func() {
		parkedAgain = s.Park(p, func() {})
		_, err := s.ReadFrame()
		res <- err
	}) {
		t.Fatal("Park = false")
	}
	start := time.Now()
	raws[0].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	select {
	case err := <-res:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read after the deadline: %v", err)
		}
		if d := time.Since(start); d < 90*time.Millisecond {
			t.Errorf("read ended after %v, before the deadline", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline did not end the parked wait")
	}
	if parkedAgain {
		t.Error("Park with a read deadline set = true")
	}
}
