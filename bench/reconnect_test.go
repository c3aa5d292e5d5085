package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/store/storetest"
	"github.com/walinkdev/walink/transport"
)

// BenchmarkReconnect: the cost of one reconnect of a linked device to the
// local WhatsApp over loopback, with a full XX handshake (mode=xx) and
// with a Noise IK resume to the chain stored from the first connect
// (mode=ik): dial, WebSocket upgrade, handshake, login payload, and the
// server's <success> read back. The server runs in a child process, so
// cpu-ns/op is the client's CPU time per reconnect (getrusage of this
// process), ns/op its wall time. The -rtt20ms variants add an emulated
// 20 ms round trip to each handshake exchange (latencyConn), where IK's
// saved round trip shows; on bare loopback it is a few microseconds. The
// XX client's certificate check goes
// through its process-wide chain cache, as the client's does; the
// xx-coldcache variant verifies the chain's two signatures every time, as
// the first connect of a new process does (IK verifies nothing then).
func BenchmarkReconnect(b *testing.B) {
	child := startWatestChild(b)
	defer child.stop()
	info, root := child.info, child.root
	id, err := jid.Parse(info.Device)
	if err != nil {
		b.Fatal(err)
	}
	d := storetest.NewDevice(b, reconnectDeviceSeed, false)
	d.ID = id
	ver, _ := engine.ParseVersion("2.3000.1045368834")
	payload, err := engine.LoginPayload(d, engine.PayloadConfig{Version: ver, OSName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	connect := func(resume *noise.CertInfo, rtt time.Duration, chains *noise.ChainCache) (*transport.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		nc, err := transport.Dial(ctx, info.WSURL, nil)
		if err != nil {
			return nil, err
		}
		if rtt > 0 {
			nc = &latencyConn{Conn: nc, rtt: rtt}
		}
		c, err := transport.Handshake(ctx, nc, transport.ClientConfig{NoiseKey: d.NoiseKey, RootKey: root, Payload: payload, Resume: resume, Chains: chains})
		if err != nil {
			return nil, err
		}
		f, err := c.ReadFrame()
		if err != nil {
			c.Close()
			return nil, err
		}
		if n, err := binxml.Unmarshal(f); err != nil || n.Tag != "success" {
			c.Close()
			return nil, fmt.Errorf("first stanza <%s>, %v", n.Tag, err)
		}
		return c, nil
	}
	// The first connect after pairing: XX, and the chain to store.
	c, err := connect(nil, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	d.ServerChain = engine.ChainFromCert(c.ServerCert())
	c.Close()

	for _, run := range []struct {
		mode string
		rtt  time.Duration
		cold bool // verify the chain on every connect, as a new process's first connect does
	}{{"xx", 0, false}, {"ik", 0, false}, {"xx", 0, true}, {"xx", 20 * time.Millisecond, false}, {"ik", 20 * time.Millisecond, false}} {
		mode, name := run.mode, "mode="+run.mode
		if run.cold {
			name += "-coldcache"
		}
		if run.rtt > 0 {
			name += fmt.Sprintf("-rtt%dms", run.rtt.Milliseconds())
		}
		b.Run(name+"/impl=walink", func(b *testing.B) {
			// What the client decides before each reconnect.
			choice := engine.ChooseHandshake(d, time.Now(), mode == "xx")
			if (choice.Mode == noise.ModeIK) != (mode == "ik") {
				b.Fatalf("chose %v: %s", choice.Mode, choice.Why)
			}
			b.ReportAllocs()
			var connecting time.Duration
			cpu0 := cpuTime()
			for b.Loop() {
				t0 := time.Now()
				var chains *noise.ChainCache // nil: the process-wide cache
				if run.cold {
					chains = &noise.ChainCache{}
				}
				c, err := connect(choice.Resume, run.rtt, chains)
				if err != nil {
					b.Fatal(err)
				}
				connecting += time.Since(t0)
				if c.Mode() != choice.Mode {
					b.Fatalf("ran %v", c.Mode())
				}
				c.Close()
			}
			// ns/op and cpu-ns/op include the WebSocket close, alike in
			// both modes; connect-ns/op is dial to <success> only.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(connecting)/float64(b.N), "connect-ns/op")
		})
	}
}

// latencyConn emulates a network round trip on loopback: the first read
// after a write waits rtt, as the answer to that write would. Only the
// Noise handshake and the frames after it go through it (the TCP connect
// and WebSocket upgrade do not), so it adds rtt per handshake round trip.
type latencyConn struct {
	net.Conn
	rtt       time.Duration
	lastWrite bool
}

func (c *latencyConn) Write(p []byte) (int, error) {
	c.lastWrite = true
	return c.Conn.Write(p)
}

func (c *latencyConn) Read(p []byte) (int, error) {
	if c.lastWrite {
		c.lastWrite = false
		time.Sleep(c.rtt)
	}
	return c.Conn.Read(p)
}

// BenchmarkResumeClientCrypto: the client's share of one handshake in
// memory (noise.Initiator; the server's steps run with the timer
// stopped), XX with the chain cache warm (side=client-xx), XX verifying
// the chain (side=client-xx-verify) and an accepted IK resume
// (side=client-ik). No sockets: the pure CPU difference that the
// loopback numbers of BenchmarkReconnect carry under a lot of noise.
func BenchmarkResumeClientCrypto(b *testing.B) {
	f := newCertFixture(b)
	client, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 200)
	clock := func() time.Time { return f.now }
	warm := &noise.ChainCache{}
	cached, err := warm.Parse(f.chain, f.root.Public, f.serverStatic.Public, f.now)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"client-xx", "client-xx-verify", "client-ik"} {
		b.Run("side="+mode+"/impl=walink", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cfg := noise.InitiatorConfig{Static: client, Rand: rand.Reader, RootKey: f.root.Public, Time: clock, Chains: warm}
				if mode == "client-xx-verify" {
					cfg.Chains = nil
				}
				if mode == "client-ik" {
					cfg.Resume = cached
				}
				in, err := noise.NewInitiator(cfg)
				if err != nil {
					b.Fatal(err)
				}
				var m1 []byte
				if mode == "client-ik" {
					m1, err = in.ResumeHello(payload)
				} else {
					m1, err = in.ClientHello()
				}
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				r, err := noise.NewResponder(noise.ResponderConfig{Static: f.serverStatic, Rand: rand.Reader})
				if err != nil {
					b.Fatal(err)
				}
				if err := r.ReadClientHello(m1); err != nil {
					b.Fatal(err)
				}
				m2, err := r.ServerHello(f.chain)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, _, err := in.ReadServerHello(m2); err != nil {
					b.Fatal(err)
				}
				m3, _, err := in.ClientFinish(payload)
				if err != nil {
					b.Fatal(err)
				}
				if (m3 == nil) != (mode == "client-ik") {
					b.Fatalf("%s: message 3 present: %v", mode, m3 != nil)
				}
			}
		})
	}
}

// BenchmarkReconnectClient: BenchmarkReconnect through walink.Client, as
// an application sees it: Connect of a linked device (its record and
// stored chain in a memstore) until the Connected event (login and the
// pre-key check included), then Disconnect; mode=xx with
// Config.DisableResume, mode=ik resuming to the chain the first connect
// stored. The server runs in a child process: cpu-ns/op is the client's.
func BenchmarkReconnectClient(b *testing.B) {
	child := startWatestChild(b)
	defer child.stop()
	info, root := child.info, child.root
	id, err := jid.Parse(info.Device)
	if err != nil {
		b.Fatal(err)
	}
	d := storetest.NewDevice(b, reconnectDeviceSeed, false)
	d.ID = id
	st := memstore.New()
	if err := st.PutDevice(context.Background(), d); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"xx", "ik"} {
		b.Run("mode="+mode+"/impl=walink-client", func(b *testing.B) {
			cli := walink.NewClient(st, walink.Config{ServerURL: info.WSURL, ServerRoot: root, Device: id, DisableResume: mode == "xx"})
			defer cli.Close()
			connected := make(chan struct{}, 1)
			cli.AddEventHandler(func(e walink.Event) {
				if _, ok := e.(walink.Connected); ok {
					connected <- struct{}{}
				}
			})
			once := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := cli.Connect(ctx); err != nil {
					b.Fatal(err)
				}
				select {
				case <-connected:
				case <-ctx.Done():
					b.Fatal("no Connected")
				}
				cli.Disconnect()
			}
			once() // stores the chain (and uploads pre-keys the first time)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				once()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if got := cli.LastHandshake(); got != mode {
				b.Fatalf("handshake %q, want %s", got, mode)
			}
		})
	}
}
