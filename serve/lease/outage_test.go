package lease

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walinkdev/walink/internal/cutproxy"
)

// viaProxy rewrites dsn's host to the proxy's.
func viaProxy(t *testing.T, dsn string) (*cutproxy.Proxy, string) {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := cutproxy.New(t, u.Host)
	u.Host = p.Addr()
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
	proxy.Cut()
	time.Sleep((a.cfg.TTL - a.cfg.StopMargin) / 2)
	if a.Stats().RenewFailures == 0 {
		t.Error("no renewal failed during the outage")
	}
	if a.Healthy() == nil {
		t.Error("healthy during the outage")
	}
	proxy.Restore()
	waitFor(t, 5*time.Second, "healthy after the outage", func() bool { return a.Healthy() == nil })
	if st := a.Stats(); st.Lost != lost0 || st.Held != len(ids) {
		t.Fatalf("after a short outage: %+v, want no lease lost", st)
	}

	// Long outage: past TTL.
	proxy.Cut()
	waitFor(t, 5*time.Second, "leases given up", func() bool { n, _ := s.count(); return n == 0 })
	var live int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM serve_leases WHERE owner = 'a' AND expires_at > now()`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != len(ids) {
		t.Errorf("connections stopped after the database expired %d leases", len(ids)-live)
	}
	time.Sleep(a.cfg.TTL)
	proxy.Restore()
	waitFor(t, 10*time.Second, "a holds everything again", func() bool { n, _ := s.count(); return n == len(ids) })
	cancel()
	s.wg.Wait()
	s.check(t)
}
