package transport_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/transport"
)

// allDeadlineCounter counts the deadline calls made on a connection.
type allDeadlineCounter struct {
	net.Conn
	n atomic.Int32
}

func (c *allDeadlineCounter) SetDeadline(t time.Time) error {
	c.n.Add(1)
	return c.Conn.SetDeadline(t)
}

func (c *allDeadlineCounter) SetReadDeadline(t time.Time) error {
	c.n.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *allDeadlineCounter) SetWriteDeadline(t time.Time) error {
	c.n.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// afterFuncCounter is a context that counts context.AfterFunc
// registrations on it (context.AfterFunc uses a context's own AfterFunc
// method), including those of contexts derived from it.
type afterFuncCounter struct {
	context.Context
	n atomic.Int32
}

// Value hides the context's own cancelCtx, which context.AfterFunc would
// register with directly.
func (c *afterFuncCounter) Value(any) any { return nil }

func (c *afterFuncCounter) AfterFunc(f func()) func() bool {
	c.n.Add(1)
	return context.AfterFunc(c.Context, f)
}

// handshakeCalls runs Dial and Handshake against AcceptConn and
// ServerHandshake over loopback TCP, and returns the deadline calls and
// AfterFunc registrations each side made.
func handshakeCalls(t *testing.T, serverCtx context.Context) (client, server, clientAF, serverAF int32) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sctx := &afterFuncCounter{Context: serverCtx}
	type result struct {
		deadlines int32
		err       error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		dc := &allDeadlineCounter{Conn: c}
		br := bufio.NewReader(dc)
		req, err := http.ReadRequest(br)
		if err != nil {
			c.Close()
			done <- result{err: err}
			return
		}
		var buffered []byte
		if n := br.Buffered(); n > 0 {
			buffered, _ = br.Peek(n)
		}
		nc, err := transport.AcceptConn(dc, req, buffered)
		if err != nil {
			c.Close()
			done <- result{err: err}
			return
		}
		sc, _, err := transport.ServerHandshake(sctx, nc, f.serverConfig())
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{deadlines: dc.n.Load()}
		sc.Close() // while the client closes too
	}()

	var dc *allDeadlineCounter
	opts := &transport.DialOptions{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		dc = &allDeadlineCounter{Conn: c}
		return dc, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cctx := &afterFuncCounter{Context: ctx}
	nc, err := transport.Dial(cctx, "ws://"+ln.Addr().String()+"/ws/chat", opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.Handshake(cctx, nc, f.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	client, clientAF = dc.n.Load(), cctx.n.Load()
	r := <-done
	c.Close()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return client, r.deadlines, clientAF, sctx.n.Load()
}

// TestHandshakeDeadlineCalls: deadlines are set once per step that needs
// its own (dial and upgrade share ctx's; the client's handshake one for
// all of it; the server's one per client message) and cleared once, and
// ctx is watched once per call that can block, not at all when it cannot
// end. Each deadline call costs a netpoller timer update.
func TestHandshakeDeadlineCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, server, clientAF, serverAF := handshakeCalls(t, ctx)
	t.Logf("deadline calls: client %d, server %d; AfterFunc: client %d, server %d", client, server, clientAF, serverAF)
	// Client: Dial sets ctx's deadline and clears it; Handshake sets one
	// deadline and clears it.
	if client > 4 {
		t.Errorf("client: %d deadline calls for Dial and Handshake, want at most 4", client)
	}
	// Server: the 101's write deadline and its clearing; the deadline for
	// the hello and the answer, the one for the finish, the clearing.
	if server > 5 {
		t.Errorf("server: %d deadline calls for AcceptConn and ServerHandshake, want at most 5", server)
	}
	// Client: net's connect, and one for Dial's upgrade and the
	// Handshake, which takes Dial's over.
	if clientAF > 2 {
		t.Errorf("client: %d context.AfterFunc registrations, want at most 2", clientAF)
	}
	// (A ctx that cannot end gets none: TestHandshakeIONoWatch.)
	if serverAF > 1 {
		t.Errorf("server: %d context.AfterFunc registrations, want at most 1", serverAF)
	}
}

// TestServerHandshakeFinishTimeout: the server waits for the client's
// finish at most HandshakeTimeout after its answer, and a ctx cancelled
// meanwhile ends the wait at once.
func TestServerHandshakeFinishTimeout(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	// A client that sends its hello, reads the answer, and sends nothing
	// more.
	stalledClient := func() net.Conn {
		cc, sc := net.Pipe()
		in, err := noise.NewInitiator(noise.InitiatorConfig{Static: f.client, Prologue: noise.HeaderV3, Rand: rand.Reader, RootKey: f.root.Public, Time: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		msg1, err := in.ClientHello()
		if err != nil {
			t.Fatal(err)
		}
		wire, _ := noise.AppendIntro(nil, noise.HeaderV3, nil)
		wire, _ = noise.AppendFrame(wire, msg1)
		go func() {
			cc.Write(wire)
			io.Copy(io.Discard, cc) // ends when the server closes sc
			cc.Close()
		}()
		return sc
	}
	cfg := f.serverConfig()
	cfg.HandshakeTimeout = 100 * time.Millisecond
	start := time.Now()
	_, _, err := transport.ServerHandshake(context.Background(), stalledClient(), cfg)
	var he *transport.HandshakeError
	if !errors.Is(err, transport.ErrHandshakeTimeout) || !errors.As(err, &he) || he.Step != "read client finish" {
		t.Errorf("stalled finish: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	cfg.HandshakeTimeout = 0
	start = time.Now()
	if _, _, err := transport.ServerHandshake(ctx, stalledClient(), cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during the finish's wait: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %v", d)
	}
}
