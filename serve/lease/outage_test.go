package lease

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cutProxy forwards TCP to PostgreSQL until cut: then it drops every
// connection and refuses new ones (accepts and closes), as a database
// restart or a partition looks to a replica.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(up, c); up.Close(); c.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, up); up.Close(); c.Close() }()
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.setCut(true)
	p.wg.Wait()
}

// viaProxy rewrites dsn's host to the proxy's.
func viaProxy(t *testing.T, dsn string) (*cutProxy, string) {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newCutProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	return p, u.String()
}

// TestDatabaseOutage: an outage shorter than TTL-StopMargin keeps every
// lease (renewal errors do not crash or stop anything, and the leases
// recover); a longer one closes Lost before the database could expire the
// leases, and the replica takes its sessions again once the database is
// back.
func TestDatabaseOutage(t *testing.T) {
	if os.Getenv(dsnEnv) == "" {
		t.Skip(dsnEnv + " not set")
	}
	dsn := testSchema(t)
	proxy, pdsn := viaProxy(t, dsn)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a := newManager(t, fast(pdsn, "a"))
	admin, err := pgxpool.New(ctx, dsn) // reads the rows directly
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ids := sessions(5)
	s := newSim()
	for _, id := range ids {
		s.run(ctx, a, id)
	}
	waitFor(t, 5*time.Second, "a holds everything", func() bool { n, _ := s.count(); return n == len(ids) })
	lost0 := a.Stats().Lost

	// Short outage: half the self-stop budget.
	proxy.setCut(true)
	time.Sleep((a.cfg.TTL - a.cfg.StopMargin) / 2)
	if a.Stats().RenewFailures == 0 {
		t.Error("no renewal failed during the outage")
	}
	if a.Healthy() == nil {
		t.Error("healthy during the outage")
	}
	proxy.setCut(false)
	waitFor(t, 5*time.Second, "healthy after the outage", func() bool { return a.Healthy() == nil })
	if st := a.Stats(); st.Lost != lost0 || st.Held != len(ids) {
		t.Fatalf("after a short outage: %+v, want no lease lost", st)
	}

	// Long outage: past TTL.
	proxy.setCut(true)
	waitFor(t, 5*time.Second, "leases given up", func() bool { n, _ := s.count(); return n == 0 })
	var live int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM serve_leases WHERE owner = 'a' AND expires_at > now()`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != len(ids) {
		t.Errorf("connections stopped after the database expired %d leases", len(ids)-live)
	}
	time.Sleep(a.cfg.TTL)
	proxy.setCut(false)
	waitFor(t, 10*time.Second, "a holds everything again", func() bool { n, _ := s.count(); return n == len(ids) })
	cancel()
	s.wg.Wait()
	s.check(t)
}
