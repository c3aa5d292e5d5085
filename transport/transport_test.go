package transport_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/transport"
)

// checkGoroutines fails the test if goroutines started during it are
// still running shortly after it ends.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

type fixture struct {
	root, server, client keys.KeyPair
	chain                []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	f := &fixture{root: kp(), server: kp(), client: kp()}
	inter := kp()
	now := time.Now()
	var err error
	f.chain, err = noise.NewCertChain(rand.Reader, f.root.Private, inter, f.server.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 1, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clientConfig() transport.ClientConfig {
	return transport.ClientConfig{NoiseKey: f.client, RootKey: f.root.Public, Payload: []byte("client payload")}
}

func (f *fixture) serverConfig() transport.ServerConfig {
	return transport.ServerConfig{Static: f.server, CertChain: f.chain}
}

type serverResult struct {
	conn  *transport.Conn
	hello *transport.Hello
	err   error
}

// handshakePair runs both handshakes over the two ends.
func handshakePair(t testing.TB, f *fixture, cc, sc net.Conn, ccfg transport.ClientConfig) (*transport.Conn, *transport.Conn, *transport.Hello) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := make(chan serverResult, 1)
	go func() {
		c, h, err := transport.ServerHandshake(ctx, sc, f.serverConfig())
		res <- serverResult{c, h, err}
	}()
	client, err := transport.Handshake(ctx, cc, ccfg)
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("server handshake: %v", r.err)
	}
	t.Cleanup(func() { client.Close(); r.conn.Close() })
	return client, r.conn, r.hello
}

// exchange sends frames both ways at once, with concurrent writers.
func exchange(t *testing.T, a, b *transport.Conn) {
	t.Helper()
	const writers, perWriter = 4, 25
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4*writers)
	for _, pair := range [][2]*transport.Conn{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					msg := fmt.Appendf(nil, "w%d-%d-%s", w, i, strings.Repeat("x", i*100))
					if err := from.WriteFrame(ctx, msg); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Go(func() {
			seen := map[string]bool{}
			for range writers * perWriter {
				p, err := to.ReadFrame()
				if err != nil {
					errs <- err
					return
				}
				if seen[string(p)] {
					errs <- fmt.Errorf("duplicate frame %q", p[:10])
					return
				}
				seen[string(p)] = true
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A large frame, kept by the caller across reads.
	big := bytes.Repeat([]byte{0xab}, 1<<20)
	go a.WriteFrame(ctx, big)
	p, err := b.ReadFrame()
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("big frame: %d bytes, %v", len(p), err)
	}
}

func TestPipe(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	cfg := f.clientConfig()
	cfg.EdgeRouting = []byte("routing")
	client, server, hello := handshakePair(t, f, cc, sc, cfg)
	if !hello.ClientStatic.Equal(f.client.Public) || string(hello.Payload) != "client payload" ||
		hello.Header != noise.HeaderV3 || string(hello.EdgeRouting) != "routing" {
		t.Fatalf("hello = %+v", hello)
	}
	if !client.PeerStatic().Equal(f.server.Public) || !server.PeerStatic().Equal(f.client.Public) {
		t.Fatal("peer statics wrong")
	}
	exchange(t, client, server)

	// Close unblocks a pending read, is idempotent, and later calls fail
	// with ErrClosed.
	done := make(chan error, 1)
	go func() { _, err := server.ReadFrame(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	server.Close()
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Errorf("pending read after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadFrame")
	}
	if err := server.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := server.WriteFrame(context.Background(), []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
	// The client sees the end of the stream.
	if _, err := client.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("client read after server Close: %v", err)
	}
}

func TestHeaderV2(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	cfg := f.clientConfig()
	cfg.Header = noise.HeaderV2
	_, _, hello := handshakePair(t, f, cc, sc, cfg)
	if hello.Header != noise.HeaderV2 || hello.EdgeRouting != nil {
		t.Fatalf("hello = %+v", hello)
	}
}

func TestWebSocket(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	conns := make(chan net.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws/chat" {
			http.NotFound(w, r)
			return
		}
		if got := r.Header.Get("Origin"); got != transport.Origin {
			t.Errorf("Origin = %q", got)
		}
		c, err := transport.Accept(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		conns <- c
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := <-conns
	client, server, hello := handshakePair(t, f, cc, sc, f.clientConfig())
	if !hello.ClientStatic.Equal(f.client.Public) {
		t.Fatal("wrong client static")
	}
	exchange(t, client, server)
	// The WebSocket close handshake needs the peer to be reading, as a
	// connection's read loop always is.
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- client.Close() }()
	if _, err := server.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("server read after client Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("client Close: %v", err)
	}
	server.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("closing took %v", d)
	}

	if _, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/nope", nil); err == nil {
		t.Error("dial to a 404 succeeded")
	}
}

func TestForeignRoot(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	cfg := f.clientConfig()
	cfg.RootKey = keys.PublicKey{} // the real WhatsApp root
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, _, err := transport.ServerHandshake(ctx, sc, f.serverConfig())
		done <- err
	}()
	_, err := transport.Handshake(ctx, cc, cfg)
	var ce *noise.CertError
	if !errors.As(err, &ce) || ce.Reason != noise.CertBadRootSignature {
		t.Fatalf("got %v, want a *noise.CertError", err)
	}
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.Step != "server hello" {
		t.Fatalf("got %v, want a *HandshakeError at server hello", err)
	}
	// The client closed the pipe, so the server fails too.
	if err := <-done; err == nil {
		t.Fatal("server handshake succeeded")
	}
}

func TestExpiredChain(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	cfg := f.clientConfig()
	cfg.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	go transport.ServerHandshake(context.Background(), sc, f.serverConfig())
	_, err := transport.Handshake(context.Background(), cc, cfg)
	var ce *noise.CertError
	if !errors.As(err, &ce) || ce.Reason != noise.CertExpired {
		t.Fatalf("got %v, want CertExpired", err)
	}
}

// A server that never answers: cancelling ctx ends the client handshake
// at once, and the handshake timeout ends it on its own.
func TestHandshakeCancelAndTimeout(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	silent := func() net.Conn {
		cc, sc := net.Pipe()
		go io.Copy(io.Discard, sc) // reads, never answers; ends when cc closes
		return cc
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := transport.Handshake(ctx, silent(), f.clientConfig())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = transport.Handshake(ctx2, silent(), f.clientConfig())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ctx deadline: got %v", err)
	}

	cfg := f.clientConfig()
	cfg.HandshakeTimeout = 50 * time.Millisecond
	_, err = transport.Handshake(context.Background(), silent(), cfg)
	if !errors.Is(err, transport.ErrHandshakeTimeout) {
		t.Errorf("timeout: got %v", err)
	}

	// Server side: a client that connects and says nothing.
	cc, sc := net.Pipe()
	defer cc.Close()
	ctx3, cancel3 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel3)
	if _, _, err := transport.ServerHandshake(ctx3, sc, f.serverConfig()); !errors.Is(err, context.Canceled) {
		t.Errorf("server cancel: got %v", err)
	}
}

func TestServerRefusesBadIntro(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	defer cc.Close()
	go cc.Write([]byte("GET / HTTP/1.1\r\n"))
	_, _, err := transport.ServerHandshake(context.Background(), sc, f.serverConfig())
	if !errors.Is(err, noise.ErrBadHeader) {
		t.Fatalf("got %v", err)
	}
}

// tamper sits between client and server and flips one bit of the first
// post-handshake frame the client sends.
func TestTamperedFrame(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, mid1 := net.Pipe()
	mid2, sc := net.Pipe()
	var flip sync.Mutex
	armed := false
	go func() { // server → client, untouched
		io.Copy(mid1, mid2)
		mid1.Close()
	}()
	go func() { // client → server, flips the last byte once armed
		buf := make([]byte, 1<<16)
		for {
			n, err := mid1.Read(buf)
			if err != nil {
				mid2.Close()
				return
			}
			flip.Lock()
			if armed {
				buf[n-1] ^= 1
				armed = false
			}
			flip.Unlock()
			if _, err := mid2.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	client, server, _ := handshakePair(t, f, cc, sc, f.clientConfig())
	flip.Lock()
	armed = true
	flip.Unlock()
	go client.WriteFrame(context.Background(), []byte("hello"))
	_, err := server.ReadFrame()
	if !errors.Is(err, noise.ErrDecrypt) {
		t.Fatalf("got %v, want ErrDecrypt", err)
	}
	// Terminal: the connection is closed and stays failed.
	if _, err := server.ReadFrame(); !errors.Is(err, noise.ErrDecrypt) {
		t.Errorf("second read: %v", err)
	}
	if err := server.WriteFrame(context.Background(), []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("write after crypto failure: %v", err)
	}
	client.Close()
}

// A write to a peer that does not read is cut short by ctx, and the error
// sticks.
func TestWriteFrameContext(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	client, server, _ := handshakePair(t, f, cc, sc, f.clientConfig())
	_ = server // never reads

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := client.WriteFrame(ctx, []byte("stuck"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("write took %v", d)
	}
	if err2 := client.WriteFrame(context.Background(), []byte("again")); !errors.Is(err2, context.DeadlineExceeded) {
		t.Errorf("error did not stick: %v", err2)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := server.WriteFrame(ctx2, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
	if err := server.WriteFrame(context.Background(), make([]byte, noise.MaxFrameSize)); !errors.Is(err, noise.ErrFrameTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	cc, sc := net.Pipe()
	defer sc.Close()
	if _, err := transport.Handshake(context.Background(), cc, transport.ClientConfig{}); !errors.Is(err, transport.ErrBadHandshakeConfig) {
		t.Errorf("client: %v", err)
	}
	if _, _, err := transport.ServerHandshake(context.Background(), sc, transport.ServerConfig{}); !errors.Is(err, transport.ErrBadHandshakeConfig) {
		t.Errorf("server: %v", err)
	}
}

// TestChainCacheAcrossHandshakes: the second handshake to a server takes
// its chain from the cache, and a cached chain still expires.
func TestChainCacheAcrossHandshakes(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cfg := f.clientConfig()
	cfg.Chains = new(noise.ChainCache)
	for range 2 {
		cc, sc := net.Pipe()
		handshakePair(t, f, cc, sc, cfg)
	}
	if got := cfg.Chains.Hits(); got != 1 {
		t.Fatalf("cache hits after two handshakes = %d, want 1", got)
	}
	cc, sc := net.Pipe()
	later := cfg
	later.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	go transport.ServerHandshake(context.Background(), sc, f.serverConfig())
	_, err := transport.Handshake(context.Background(), cc, later)
	var ce *noise.CertError
	if !errors.As(err, &ce) || ce.Reason != noise.CertExpired {
		t.Fatalf("cached chain after expiry: got %v, want CertExpired", err)
	}
	if got := cfg.Chains.Hits(); got != 2 {
		t.Fatalf("cache hits = %d, want 2 (the expired use)", got)
	}
}
