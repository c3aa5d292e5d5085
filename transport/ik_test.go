package transport_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/transport"
)

type pairResult struct {
	client, server *transport.Conn
	hello          *transport.Hello
	cerr, serr     error
}

// runPair runs both handshakes over a pipe and returns both outcomes.
func runPair(t *testing.T, ccfg transport.ClientConfig, scfg transport.ServerConfig) pairResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, sc := net.Pipe()
	res := make(chan serverResult, 1)
	go func() {
		c, h, err := transport.ServerHandshake(ctx, sc, scfg)
		res <- serverResult{c, h, err}
	}()
	var p pairResult
	p.client, p.cerr = transport.Handshake(ctx, cc, ccfg)
	r := <-res
	p.server, p.hello, p.serr = r.conn, r.hello, r.err
	t.Cleanup(func() {
		if p.client != nil {
			p.client.Close()
		}
		if p.server != nil {
			p.server.Close()
		}
	})
	return p
}

// cachedFromXX runs a full handshake and returns the chain the client
// would store for its next resume.
func cachedFromXX(t *testing.T, f *fixture) *noise.CertInfo {
	t.Helper()
	p := runPair(t, f.clientConfig(), f.serverConfig())
	if p.cerr != nil || p.serr != nil {
		t.Fatalf("xx: %v / %v", p.cerr, p.serr)
	}
	if p.client.Mode() != noise.ModeXX || p.hello.Mode != noise.ModeXX || p.server.Mode() != noise.ModeXX {
		t.Fatalf("modes %v %v", p.client.Mode(), p.hello.Mode)
	}
	info := p.client.ServerCert()
	if info == nil || !info.LeafKey.Equal(f.server.Public) || p.server.ServerCert() != nil {
		t.Fatalf("ServerCert = %+v", info)
	}
	return info
}

func TestResume(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cached := cachedFromXX(t, f)

	// The server rotated its static key (same root, new chain).
	rotated := *f
	var err error
	if rotated.server, err = keys.NewKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	inter, _ := keys.NewKeyPair(rand.Reader)
	now := time.Now()
	if rotated.chain, err = noise.NewCertChain(rand.Reader, f.root.Private, inter, rotated.server.Public, noise.CertOptions{
		IntermediateSerial: 8, LeafSerial: 2, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	expired := *cached
	expired.LeafNotAfter = now.Add(-time.Minute)

	for _, tc := range []struct {
		name   string
		cache  *noise.CertInfo
		server *fixture
		policy noise.IKPolicy
		mode   noise.Mode
	}{
		{"accepted", cached, f, noise.IKAccept, noise.ModeIK},
		{"server rotated", cached, &rotated, noise.IKAccept, noise.ModeXXFallback},
		{"server forces fallback", cached, f, noise.IKFallback, noise.ModeXXFallback},
		{"expired cache", &expired, f, noise.IKAccept, noise.ModeXX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ccfg := f.clientConfig()
			ccfg.Resume = tc.cache
			scfg := tc.server.serverConfig()
			scfg.IK = tc.policy
			p := runPair(t, ccfg, scfg)
			if p.cerr != nil || p.serr != nil {
				t.Fatalf("handshake: %v / %v", p.cerr, p.serr)
			}
			if p.client.Mode() != tc.mode || p.hello.Mode != tc.mode || p.server.Mode() != tc.mode {
				t.Fatalf("modes client %v hello %v server %v, want %v", p.client.Mode(), p.hello.Mode, p.server.Mode(), tc.mode)
			}
			if !p.hello.ClientStatic.Equal(f.client.Public) || string(p.hello.Payload) != "client payload" {
				t.Fatalf("hello = %+v", p.hello)
			}
			if !p.client.PeerStatic().Equal(tc.server.server.Public) {
				t.Fatal("client's peer static is not the server's current key")
			}
			if got := p.client.ServerCert(); got == nil || !got.LeafKey.Equal(tc.server.server.Public) {
				t.Fatalf("ServerCert after %s = %+v", tc.name, got)
			}
			exchange(t, p.client, p.server)
		})
	}
}

// The server speaks first after an accepted resume (success follows the
// server hello at once); the client must see that frame.
func TestResumeServerSpeaksFirst(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cached := cachedFromXX(t, f)
	cc, sc := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c, _, err := transport.ServerHandshake(ctx, sc, f.serverConfig())
		if err == nil {
			err = c.WriteFrame(ctx, []byte("success"))
			defer c.Close()
		}
		done <- err
	}()
	ccfg := f.clientConfig()
	ccfg.Resume = cached
	c, err := transport.Handshake(ctx, cc, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p, err := c.ReadFrame(); err != nil || string(p) != "success" {
		t.Fatalf("first frame %q %v", p, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestResumeRefused(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	ccfg := f.clientConfig()
	ccfg.Resume = cachedFromXX(t, f)
	scfg := f.serverConfig()
	scfg.IK = noise.IKRefuse
	p := runPair(t, ccfg, scfg)
	if !errors.Is(p.serr, noise.ErrUnsupported) {
		t.Errorf("server: %v, want noise.ErrUnsupported", p.serr)
	}
	var he *transport.HandshakeError
	if !errors.Is(p.cerr, transport.ErrResumeFailed) || !errors.As(p.cerr, &he) || he.Step != "read server hello" {
		t.Errorf("client: %v, want ErrResumeFailed at read server hello", p.cerr)
	}
}

// A resume that times out is not a reason to forget the cache.
func TestResumeTimeoutIsNotFatal(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	ccfg := f.clientConfig()
	ccfg.Resume = cachedFromXX(t, f)
	ccfg.HandshakeTimeout = 100 * time.Millisecond
	cc, sc := net.Pipe()
	defer sc.Close()
	go io.Copy(io.Discard, sc) // a server that reads and never answers
	_, err := transport.Handshake(context.Background(), cc, ccfg)
	if !errors.Is(err, transport.ErrHandshakeTimeout) || errors.Is(err, transport.ErrResumeFailed) {
		t.Fatalf("got %v, want ErrHandshakeTimeout without ErrResumeFailed", err)
	}
}

// An accepted resume whose server hello was altered in transit.
func TestResumeTamperedAnswer(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	ccfg := f.clientConfig()
	ccfg.Resume = cachedFromXX(t, f)
	cc, sc := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		// A middlebox: run the real server on another pipe and flip the
		// last byte of its answer.
		defer sc.Close()
		inner, outer := net.Pipe()
		defer outer.Close()
		go transport.ServerHandshake(ctx, inner, f.serverConfig())
		buf := make([]byte, 4096)
		n, _ := sc.Read(buf)
		outer.Write(buf[:n])
		n, _ = outer.Read(buf)
		buf[n-1] ^= 1
		sc.Write(buf[:n])
		io.Copy(io.Discard, sc)
	}()
	_, err := transport.Handshake(ctx, cc, ccfg)
	if !errors.Is(err, transport.ErrResumeFailed) || !errors.Is(err, noise.ErrDecrypt) {
		t.Fatalf("got %v, want ErrResumeFailed wrapping noise.ErrDecrypt", err)
	}
}
