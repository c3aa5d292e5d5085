package serve

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/watest"
)

// TestSSEResume: a stream dropped mid-way and resumed with Last-Event-ID
// gets every event it missed, in order, once; so does one resumed after a
// restart of the service (the history is in the database).
func TestSSEResume(t *testing.T) {
	e := newEnv(t, envOpts{})
	s1 := e.stream("/v1/events", "")
	var got []sseEvent
	a := e.must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	got = append(got, s1.next(t, 5*time.Second, func(sseEvent) bool { return true }))
	s1.close() // dropped
	// Events while nobody listens.
	b := e.must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	e.must(200, "POST", "/v1/sessions/"+a+"/start", nil)
	e.waitStatus(a, StatusScanQR, 10*time.Second)
	e.must(200, "POST", "/v1/sessions/"+a+"/stop", nil)
	e.must(204, "DELETE", "/v1/sessions/"+b, nil)

	// The whole history, for reference.
	all := e.stream("/v1/events", "0")
	var want []sseEvent
	for {
		ev := all.next(t, 5*time.Second, func(sseEvent) bool { return true })
		want = append(want, ev)
		if ev.Name == "session_deleted" {
			break
		}
	}
	all.close()
	s2 := e.stream("/v1/events", got[0].ID)
	for len(got) < len(want) {
		got = append(got, s2.next(t, 5*time.Second, func(sseEvent) bool { return true }))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Name != want[i].Name {
			t.Fatalf("event %d: got %s %s, want %s %s", i, got[i].ID, got[i].Name, want[i].ID, want[i].Name)
		}
	}
	for i := 1; i < len(got); i++ {
		p, _ := strconv.Atoi(got[i-1].ID)
		n, _ := strconv.Atoi(got[i].ID)
		if n <= p {
			t.Fatalf("ids not increasing: %s then %s", got[i-1].ID, got[i].ID)
		}
	}
	// Live events follow the replay on the same stream.
	e.must(200, "POST", "/v1/sessions/"+a+"/start", nil)
	s2.next(t, 10*time.Second, isStatus(a, StatusStarting))
	e.must(200, "POST", "/v1/sessions/"+a+"/stop", nil)
	last := s2.next(t, 10*time.Second, isStatus(a, StatusDisconnected))

	// Per-session stream, resumed across a restart.
	e.restart()
	e.must(200, "POST", "/v1/sessions/"+a+"/start", nil)
	s3 := e.stream("/v1/sessions/"+a+"/events", last.ID)
	ev := s3.next(t, 10*time.Second, func(sseEvent) bool { return true })
	if ev.Data["session_id"] != a || ev.Name != "status" {
		t.Fatalf("after restart: %v", ev)
	}
	if n, _ := strconv.Atoi(ev.ID); n <= atoi(last.ID) {
		t.Fatalf("after restart: id %s not after %s", ev.ID, last.ID)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// countingProxy sits in front of the local WhatsApp and measures how many
// connections are between accept and login at once: the handshakes in
// flight as the server sees them.
type countingProxy struct {
	ln       net.Listener
	target   string
	srv      *watest.Server
	accepted atomic.Int64
	maxIn    atomic.Int64
	base     atomic.Int64 // accepted - settled when reset: connections of before
	wg       sync.WaitGroup
	mu       sync.Mutex
	live     map[net.Conn]bool // both ends of every proxied connection
}

func newCountingProxy(t *testing.T, srv *watest.Server) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := strings.TrimSuffix(strings.TrimPrefix(srv.URL(), "ws://"), "/ws/chat")
	p := &countingProxy{ln: ln, target: target, srv: srv}
	p.wg.Add(1)
	go p.loop()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *countingProxy) track(c, u net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live == nil {
		p.live = map[net.Conn]bool{}
	}
	if on {
		p.live[c], p.live[u] = true, true
	} else {
		delete(p.live, c)
		delete(p.live, u)
	}
}

// dropAll cuts every proxied connection at once, as a network outage
// does (no stream error, the sockets just die); it returns how many
// connections it cut.
func (p *countingProxy) dropAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.live {
		c.Close()
	}
	return len(p.live) / 2
}

func (p *countingProxy) url() string { return "ws://" + p.ln.Addr().String() + "/ws/chat" }

// logins counts connections the server has finished with: logged in or
// failed (from its event log).
func (p *countingProxy) settled() int64 {
	var n int64
	for _, ev := range p.srv.Events() {
		if ev.Dir == watest.DirInfo && (strings.HasPrefix(ev.Note, "login ") || strings.HasPrefix(ev.Note, "handshake failed") || strings.Contains(ev.Note, "refused")) {
			n++
		}
	}
	return n
}

// reset starts a measurement: only connections from now on count.
func (p *countingProxy) reset() {
	p.base.Store(p.accepted.Load() - p.settled())
	p.maxIn.Store(0)
}

func (p *countingProxy) loop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		in := p.accepted.Add(1) - p.settled() - p.base.Load()
		for {
			m := p.maxIn.Load()
			if in <= m || p.maxIn.CompareAndSwap(m, in) {
				break
			}
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer u.Close()
			p.track(c, u, true)
			defer p.track(c, u, false)
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

// TestRestartReconnects: N linked sessions, the service stops (as on
// SIGTERM: no logout) and starts again: every session is connected again,
// with at most StartConcurrency handshakes in flight at the local
// WhatsApp at any moment. N is 12 by default; WALINK_SERVE_RESTART_N=1000
// runs the 1,000.
func TestRestartReconnects(t *testing.T) {
	n := 12
	if v, err := strconv.Atoi(os.Getenv("WALINK_SERVE_RESTART_N")); err == nil && v > 0 {
		n = v
	}
	const conc = 4
	// The proxy counts settled logins from the node log: keep all of them.
	srv := startSim(t, watest.Config{EventLogSize: 128 * n})
	proxy := newCountingProxy(t, srv)
	e := newEnv(t, envOpts{srv: srv, serverURL: proxy.url(), mutate: func(c *Config) {
		c.StartConcurrency = conc
		c.StartJitter = 5 * time.Millisecond
	}})
	ids := e.linkQRMany(n, 4, func(i int) string { return fmt.Sprintf("1555%07d", 100000+i) })
	if t.Failed() {
		return
	}
	e.stop()
	for i := range ids {
		if d := srv.Phone(fmt.Sprintf("1555%07d", 100000+i)).Devices(); len(d) != 1 {
			t.Fatalf("account %d: %d devices after stop (a stop must not log out)", i, len(d))
		}
	}
	proxy.reset()
	before := proxy.accepted.Load()
	t0 := time.Now()
	e.start()
	deadline := time.Now().Add(time.Duration(n)*200*time.Millisecond + 20*time.Second)
	for {
		l := e.must(200, "GET", "/v1/sessions", nil)
		connected := 0
		for _, s := range l["sessions"].([]any) {
			if s.(map[string]any)["status"] == "connected" {
				connected++
			}
		}
		if connected == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connected after restart", connected, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d sessions reconnected in %v; %d connections; at most %d handshakes in flight (limit %d)",
		n, time.Since(t0).Round(time.Millisecond), proxy.accepted.Load()-before, proxy.maxIn.Load(), conc)
	if m := proxy.maxIn.Load(); m > conc {
		t.Fatalf("%d handshakes in flight at once, limit %d", m, conc)
	}
	if m := proxy.maxIn.Load(); n >= 2*conc && m < 2 {
		t.Fatalf("at most %d handshake in flight: the measurement sees nothing", m)
	}
}
