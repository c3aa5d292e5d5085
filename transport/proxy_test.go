package transport_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/transport"
)

// wsServer is a TLS WebSocket server that runs the server handshake and
// echoes one frame.
func wsServer(t *testing.T, f *fixture) *httptest.Server {
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
		p, err := c.ReadFrame()
		if err != nil {
			t.Error(err)
			return
		}
		if err := c.WriteFrame(r.Context(), p); err != nil {
			t.Error(err)
		}
		c.ReadFrame() // until the client closes
	}))
	t.Cleanup(func() { wg.Wait(); srv.Close() })
	return srv
}

func tlsConfig(srv *httptest.Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: pool}
}

func echoOverProxy(t *testing.T, f *fixture, srv *httptest.Server, proxy *url.URL) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &transport.DialOptions{TLSConfig: tlsConfig(srv), Header: http.Header{"X-Test": {"1"}}}
	if proxy != nil {
		opts.Proxy = http.ProxyURL(proxy)
	}
	nc, err := transport.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https")+"/ws/chat", opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := transport.Handshake(ctx, nc, f.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFrame(ctx, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadFrame()
	if err != nil || string(p) != "ping" {
		t.Fatalf("echo: %q %v", p, err)
	}
	c.Close()
}

func TestDialTLS(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	echoOverProxy(t, f, wsServer(t, f), nil)
}

// connectProxy is a minimal HTTP CONNECT proxy.
func connectProxy(t *testing.T, used *atomic.Int32) *httptest.Server {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
	)
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		used.Add(1)
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		// Hijack first, then answer on the raw connection: a 200 written
		// through the ResponseWriter before Hijack is sometimes lost, and
		// the client then reads EOF (seen as a rare flake under -race).
		down, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		if _, err := io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			down.Close()
			up.Close()
			return
		}
		// The tunnel joins wg under mu, before the cleanup's Wait or not
		// at all: a WaitGroup's first Add must not race its Wait.
		mu.Lock()
		defer mu.Unlock()
		if closed {
			down.Close()
			up.Close()
			return
		}
		splice(&wg, down, up)
	}))
	t.Cleanup(func() {
		p.Close()
		mu.Lock()
		closed = true
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// splice copies both ways and closes both ends when either side ends.
func splice(wg *sync.WaitGroup, a, b net.Conn) {
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(a, b); a.Close(); b.Close() }()
	go func() { defer wg.Done(); io.Copy(b, a); a.Close(); b.Close() }()
}

func TestDialHTTPProxy(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	srv := wsServer(t, f)
	var used atomic.Int32
	p := connectProxy(t, &used)
	u, _ := url.Parse(p.URL)
	echoOverProxy(t, f, srv, u)
	if used.Load() != 1 {
		t.Fatalf("proxy used %d times", used.Load())
	}
}

// socks5Proxy is a minimal SOCKS5 server (no auth, CONNECT only).
func socks5Proxy(t *testing.T, used *atomic.Int32) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			used.Add(1)
			up, err := socks5Handshake(c)
			if err != nil {
				c.Close()
				continue
			}
			splice(&wg, c, up)
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

func socks5Handshake(c net.Conn) (net.Conn, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(c, make([]byte, hdr[1])); err != nil {
		return nil, err
	}
	c.Write([]byte{5, 0}) // no authentication
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return nil, err
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(c, ip)
		host = net.IP(ip).String()
	case 3:
		var n [1]byte
		io.ReadFull(c, n[:])
		name := make([]byte, n[0])
		io.ReadFull(c, name)
		host = string(name)
	default:
		return nil, io.ErrUnexpectedEOF
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return nil, err
	}
	up, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))))
	if err != nil {
		c.Write([]byte{5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
		return nil, err
	}
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	return up, nil
}

func TestDialSOCKS5Proxy(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	srv := wsServer(t, f)
	var used atomic.Int32
	addr := socks5Proxy(t, &used)
	echoOverProxy(t, f, srv, &url.URL{Scheme: "socks5", Host: addr})
	if used.Load() != 1 {
		t.Fatalf("proxy used %d times", used.Load())
	}
}
