package bench

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store/storetest"
	"github.com/walinkdev/walink/transport"
	"github.com/walinkdev/walink/watest"
)

// X25519OpsPerHandshake is the number of X25519 scalar multiplications one
// Noise XX handshake costs both ends together: each side makes an ephemeral
// key (1) and computes three DHs (ee, es, se). The server's static key is
// long-lived. The client also verifies two XEdDSA certificate signatures,
// which are not X25519 and are reported beside it.
const X25519OpsPerHandshake = 8

// BenchmarkX25519 is the limit's unit: one X25519 operation with Go's
// crypto/ecdh (what a Go server has without further work; keys is faster,
// see the walink-keys rows), and the XEdDSA verify the client adds per
// handshake for the certificate chain.
func BenchmarkX25519(b *testing.B) {
	c := ecdh.X25519()
	priv, err := c.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := c.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	// cpu-ns/op beside ns/op: on a machine shared with other jobs the
	// wall time of this one goroutine grows with the load, while the
	// handshake's limit is compared by CPU time (BenchmarkHandshake's
	// cpu-ns/op), which grows far less.
	b.Run("op=dh/impl=ecdh", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := priv.ECDH(peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("op=keygen/impl=ecdh", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			k, err := c.GenerateKey(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			_ = k.PublicKey()
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	// walink's keys package as noise uses it: PrivateKey.ECDH runs CIRCL's
	// ladder on amd64 with BMI2/ADX (its own 51-bit ladder elsewhere), and
	// NewKeyPair an Edwards fixed-base multiplication.
	wpriv, _ := keys.NewKeyPair(rand.Reader)
	wpeer, _ := keys.NewKeyPair(rand.Reader)
	b.Run("op=dh/impl=walink-keys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wpriv.Private.ECDH(wpeer.Public); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=keygen/impl=walink-keys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := keys.NewKeyPair(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=xeddsa-verify/impl=walink", func(b *testing.B) {
		kp, _ := keys.NewKeyPair(rand.Reader)
		msg := make([]byte, 100)
		sig, _ := kp.Private.Sign(rand.Reader, msg)
		b.ReportAllocs()
		for b.Loop() {
			if !keys.Verify(kp.Public, msg, sig[:]) {
				b.Fatal("verify")
			}
		}
	})
}

type certFixture struct {
	now          time.Time
	root         keys.KeyPair
	serverStatic keys.KeyPair
	chain        []byte
}

func newCertFixture(tb testing.TB) certFixture {
	f := certFixture{now: time.Unix(1_800_000_000, 0)}
	var inter keys.KeyPair
	for _, k := range []*keys.KeyPair{&f.root, &f.serverStatic, &inter} {
		var err error
		if *k, err = keys.NewKeyPair(rand.Reader); err != nil {
			tb.Fatal(err)
		}
	}
	var err error
	f.chain, err = noise.NewCertChain(rand.Reader, f.root.Private, inter, f.serverStatic.Public, noise.CertOptions{
		IntermediateSerial: 1, LeafSerial: 2, NotBefore: f.now.Add(-time.Hour), NotAfter: f.now.Add(time.Hour),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// memoryHandshake runs both sides of one XX handshake with certificate
// verification and a small payload, in memory.
func memoryHandshake(f *certFixture, client keys.KeyPair, payload []byte) error {
	in, err := noise.NewInitiator(noise.InitiatorConfig{Static: client, Rand: rand.Reader, RootKey: f.root.Public, Time: func() time.Time { return f.now }})
	if err != nil {
		return err
	}
	r, err := noise.NewResponder(noise.ResponderConfig{Static: f.serverStatic, Rand: rand.Reader})
	if err != nil {
		return err
	}
	m1, err := in.ClientHello()
	if err != nil {
		return err
	}
	if err := r.ReadClientHello(m1); err != nil {
		return err
	}
	m2, err := r.ServerHello(f.chain)
	if err != nil {
		return err
	}
	if _, _, err := in.ReadServerHello(m2); err != nil {
		return err
	}
	m3, _, err := in.ClientFinish(payload)
	if err != nil {
		return err
	}
	_, _, _, err = r.ReadClientFinish(m3)
	return err
}

// BenchmarkHandshake: where=memory is the pure Noise XX work of both ends
// (noise.Initiator + noise.Responder, no IO); where=watest is a full
// connection to the local WhatsApp over loopback WebSocket: dial, upgrade,
// handshake, registration payload, and the first stanza (pair-device) read
// back, so the server's whole side is included. Both sides run in this
// process; ns/op of the parallel run is wall time per handshake, so
// handshakes/s = 1e9 / ns/op. where=watest-child is the same run against
// watest in a child process (same scenario): cpu-ns/op is then the load
// generator's CPU alone and sim-cpu-ns/op the sim's alone (the child's
// getrusage over the timed section), to set against the responder's own
// X25519 work (ServerX25519Ops).
func BenchmarkHandshake(b *testing.B) {
	f := newCertFixture(b)
	client, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 200)
	b.Run("where=memory/impl=walink", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := memoryHandshake(&f, client, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("where=memory-parallel/impl=walink", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := memoryHandshake(&f, client, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("where=watest/impl=walink", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sc := benchScenario()
		srv, err := watest.Start(ctx, watest.Config{Scenario: &sc})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		benchWatestHandshake(b, srv.URL(), srv.RootKey(), nil)
	})
	// One child for all of this benchmark's b.N rounds, started by the
	// first (a child per round would add its start-up to each round's
	// wall time for nothing), ended when BenchmarkHandshake returns, on
	// every path.
	var child *watestChild
	defer func() {
		if child != nil {
			child.stop()
		}
	}()
	b.Run("where=watest-child/impl=walink", func(b *testing.B) {
		if child == nil {
			child = startWatestChild(b)
		}
		benchWatestHandshake(b, child.info.WSURL, child.root, child)
	})
}

// ServerX25519Ops is the X25519 work of the responder's side of one XX
// handshake, as noise.Responder does it: one ephemeral key generation
// (ServerHello) and three DHs, ee and es (ServerHello) and se
// (ReadClientFinish). Its static key is long-lived. cmd/report prices it
// in crypto/ecdh units against the sim's CPU per handshake.
const ServerX25519Ops = 1 + 3

// settleSim is how long the benchmark lets the child sim finish the
// connections that ended (their server-side close and teardown) before
// it reads the child's CPU time, so that each read sees a quiet sim: the
// warm-up's tail is not billed to the timed section, the last
// handshakes' tails are.
const settleSim = 50 * time.Millisecond

// benchWatestHandshake runs handshakes against the local WhatsApp at url,
// 8 goroutines per CPU. With sim set (a child process), it also reports
// the sim's CPU time per handshake.
func benchWatestHandshake(b *testing.B, url string, root keys.PublicKey, sim *watestChild) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dev := storetest.NewDevice(b, 1, false)
	ver, err := engine.ParseVersion("2.3000.1045368834")
	if err != nil {
		b.Fatal(err)
	}
	payload, err := engine.RegistrationPayload(dev, engine.PayloadConfig{Version: ver, OSName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	// Distinct noise keys, like different companions; made before the
	// timer, as a companion makes its static key once, at registration,
	// not per handshake.
	noiseKeys := make([]keys.KeyPair, min(max(b.N, 1), 1024))
	for i := range noiseKeys {
		if noiseKeys[i], err = keys.NewKeyPair(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Uint64
	one := func() error {
		nk := noiseKeys[seq.Add(1)%uint64(len(noiseKeys))]
		hctx, hcancel := context.WithTimeout(ctx, 30*time.Second)
		defer hcancel()
		nc, err := transport.Dial(hctx, url, nil)
		if err != nil {
			return err
		}
		c, err := transport.Handshake(hctx, nc, transport.ClientConfig{NoiseKey: nk, RootKey: root, Payload: payload})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.ReadFrame()
		return err
	}
	if err := one(); err != nil {
		b.Fatal(err)
	}
	var sim0 time.Duration
	if sim != nil {
		time.Sleep(settleSim)
		sim0 = sim.cpu(b)
	}
	b.ResetTimer()
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := one(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	// Both ends' CPU time per handshake (getrusage of this process): on a
	// machine shared with other jobs, wall time per handshake depends on
	// how much of the CPUs the run got, CPU time does not.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if sim != nil {
		b.StopTimer()
		time.Sleep(settleSim)
		b.ReportMetric(float64(sim.cpu(b)-sim0)/float64(b.N), "sim-cpu-ns/op")
	}
}
