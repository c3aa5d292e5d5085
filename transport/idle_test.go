package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/transport"
)

// acceptServer starts an HTTP server whose handler upgrades every request
// with Accept and hands the WebSocket over on conns; it closes at cleanup.
func acceptServer(tb testing.TB) (wsURL string, conns <-chan net.Conn) {
	tb.Helper()
	ch := make(chan net.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Accept(w, r)
		if err != nil {
			tb.Error(err)
			return
		}
		ch <- c
	}))
	tb.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/chat", ch
}

// wsPair dials one client WebSocket to an Accept server on a real socket
// and runs both handshakes, the client with idleRelease.
func wsPair(t *testing.T, f *fixture, idleRelease time.Duration) (client, server *transport.Conn) {
	t.Helper()
	wsURL, conns := acceptServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := transport.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.clientConfig()
	cfg.IdleRelease = idleRelease
	client, server, _ = handshakePair(t, f, cc, <-conns, cfg)
	t.Cleanup(func() {
		go client.ReadFrame() // so that the closing handshake is answered
		server.Close()
	})
	return client, server
}

// waitReleased polls until c's reader has dropped the cipher's state.
func waitReleased(t *testing.T, c *transport.Conn) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !c.CipherReleased(); {
		if time.Now().After(deadline) {
			t.Fatal("an idle client Conn kept its AES-GCM state")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An idle client Conn drops its cipher's AES-GCM state while its reader
// waits, and both directions work after it (the state is rebuilt).
func TestIdleClientReleasesCipher(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	client, server := wsPair(t, f, 20*time.Millisecond)
	ctx := context.Background()
	frames := make(chan string, 4)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			p, err := client.ReadFrame()
			if err != nil {
				close(frames)
				return
			}
			frames <- string(p)
		}
	}()
	for i := range 3 {
		if err := client.WriteFrame(ctx, fmt.Appendf(nil, "up %d", i)); err != nil {
			t.Fatal(err)
		}
		if p, err := server.ReadFrame(); err != nil || string(p) != fmt.Sprintf("up %d", i) {
			t.Fatalf("server read %q, %v", p, err)
		}
		if err := server.WriteFrame(ctx, fmt.Appendf(nil, "down %d", i)); err != nil {
			t.Fatal(err)
		}
		if p := <-frames; p != fmt.Sprintf("down %d", i) {
			t.Fatalf("client read %q", p)
		}
		waitReleased(t, client)
	}
	server.Close() // the reader answers the closing handshake
	client.Close()
	<-readerDone
}

// A client Conn whose frames come sooner than IdleRelease keeps its
// state: no rebuild (and allocation) per frame.
func TestBusyClientKeepsCipher(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	client, server := wsPair(t, f, time.Hour)
	ctx := context.Background()
	if err := server.WriteFrame(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	go client.ReadFrame() // waits, holding readMu
	time.Sleep(50 * time.Millisecond)
	if client.CipherReleased() {
		t.Fatal("released before IdleRelease passed")
	}
}

// The reader drops the state while other goroutines write: every frame
// still gets through intact, in order per writer (run with -race).
func TestIdleReleaseConcurrentWrites(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	client, server := wsPair(t, f, time.Millisecond)
	ctx := context.Background()
	const writers, perWriter = 4, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := client.WriteFrame(ctx, fmt.Appendf(nil, "w%d %d", w, i)); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					time.Sleep(time.Duration(w+1) * time.Millisecond) // let the reader go idle
				}
			}
		})
	}
	// The server echoes every tenth frame after a pause, so the client's
	// reader goes idle, releases and rebuilds while writes run.
	echoed := make(chan error, 1)
	go func() {
		next := make([]int, writers)
		for n := range writers * perWriter {
			p, err := server.ReadFrame()
			if err != nil {
				echoed <- err
				return
			}
			var w, i int
			if _, err := fmt.Sscanf(string(p), "w%d %d", &w, &i); err != nil || w >= writers || next[w] != i {
				echoed <- fmt.Errorf("server read %q out of order", p)
				return
			}
			next[w]++
			if n%10 == 0 {
				time.Sleep(2 * time.Millisecond)
				if err := server.WriteFrame(ctx, p); err != nil {
					echoed <- err
					return
				}
			}
		}
		echoed <- nil
	}()
	for range writers * perWriter / 10 {
		p, err := client.ReadFrame()
		if err != nil || !bytes.HasPrefix(p, []byte("w")) {
			t.Fatalf("client read %q, %v", p, err)
		}
	}
	wg.Wait()
	if err := <-echoed; err != nil {
		t.Fatal(err)
	}
	go client.ReadFrame()
	waitReleased(t, client)
}

// Over TLS (wss) the idle wait's timeout leaves the stream usable: frames
// that come after it, and after the state was dropped, read in order.
func TestIdleReleaseTLS(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	var wg sync.WaitGroup
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		nc, err := transport.Accept(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		c, _, err := transport.ServerHandshake(r.Context(), nc, f.serverConfig())
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for {
			p, err := c.ReadFrame()
			if err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond) // longer than the client's IdleRelease
			if err := c.WriteFrame(r.Context(), p); err != nil {
				t.Error(err)
				return
			}
		}
	}))
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := transport.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https")+"/ws/chat", &transport.DialOptions{TLSConfig: tlsConfig(srv)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.clientConfig()
	cfg.IdleRelease = 5 * time.Millisecond
	c, err := transport.Handshake(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		msg := bytes.Repeat([]byte{byte(i)}, 100+i*20000) // small, and past one TLS record
		if err := c.WriteFrame(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if p, err := c.ReadFrame(); err != nil || !bytes.Equal(p, msg) {
			t.Fatalf("echo %d: %d bytes, %v", i, len(p), err)
		}
	}
	go c.ReadFrame()
	waitReleased(t, c)
}

// BenchmarkWSRoundTrip: a 1 KiB frame each way over this package's
// WebSocket on loopback, the client's reader waiting for every answer;
// idle=on is the default IdleRelease (each wait runs under a read
// deadline), idle=off never releases (the cost of that deadline).
func BenchmarkWSRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		idle time.Duration
	}{{"on", 0}, {"off", -1}} {
		b.Run("idle="+bc.name, func(b *testing.B) {
			f := newFixture(b)
			wsURL, conns := acceptServer(b)
			ctx := context.Background()
			cc, err := transport.Dial(ctx, wsURL, nil)
			if err != nil {
				b.Fatal(err)
			}
			cfg := f.clientConfig()
			cfg.IdleRelease = bc.idle
			client, server, _ := handshakePair(b, f, cc, <-conns, cfg)
			go func() {
				for {
					p, err := server.NextFrame()
					if err != nil || server.WriteFrame(ctx, p) != nil {
						return
					}
				}
			}()
			msg := make([]byte, 1024)
			b.SetBytes(2 * int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if err := client.WriteFrame(ctx, msg); err != nil {
					b.Fatal(err)
				}
				if _, err := client.NextFrame(); err != nil {
					b.Fatal(err)
				}
			}
			go client.NextFrame()
			server.Close()
		})
	}
}

// deadlineCounter counts the read deadlines set on a connection.
type deadlineCounter struct {
	net.Conn
	n atomic.Int32
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.n.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// A busy client Conn does not pay a read deadline per frame for its idle
// release: the deadline stays set across frames and is moved about once
// per half IdleRelease.
func TestBusyClientFewDeadlines(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	wsURL, conns := acceptServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var raw *deadlineCounter
	opts := &transport.DialOptions{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		raw = &deadlineCounter{Conn: c}
		return raw, nil
	}}
	cc, err := transport.Dial(ctx, wsURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.clientConfig()
	cfg.IdleRelease = time.Hour
	client, server, _ := handshakePair(t, f, cc, <-conns, cfg)
	defer server.Close()
	defer func() { go client.ReadFrame() }()
	before := raw.n.Load()
	const frames = 300
	for i := range frames {
		if err := server.WriteFrame(ctx, fmt.Appendf(nil, "f%d", i)); err != nil {
			t.Fatal(err)
		}
		if p, err := client.ReadFrame(); err != nil || string(p) != fmt.Sprintf("f%d", i) {
			t.Fatalf("frame %d: %q %v", i, p, err)
		}
	}
	if n := raw.n.Load() - before; n > 2 {
		t.Fatalf("%d read deadlines set for %d frames", n, frames)
	}
}
