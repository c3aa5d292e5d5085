package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const dsnEnv = "WALINK_TEST_POSTGRES_DSN"

// TestMain fails the package when a goroutine of a Manager (or of a pool
// it owns) outlives the tests: Close joins every one.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if left := leftGoroutines(5 * time.Second); left != "" {
			fmt.Fprintf(os.Stderr, "goroutines left after all tests:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

func leftGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		var ours []string
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, "lease.TestMain") || strings.Contains(g, "lease.leftGoroutines") {
				continue
			}
			if strings.Contains(g, "walink/serve/lease.") || strings.Contains(g, "pgxpool.") {
				ours = append(ours, g)
			}
		}
		if len(ours) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(ours, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testSchema creates a schema for one test (dropped at cleanup) and
// returns the DSN selecting it.
func testSchema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("%s is not set; PostgreSQL tests skipped", dsnEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)
	var b [8]byte
	rand.Read(b[:])
	schema := "lease_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema: %v", err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", dsnEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// fast is a timing that keeps tests short yet survives a loaded machine
// (statements taking hundreds of milliseconds): TTL 3s, renew 500ms, stop
// margin 1s (2*0.5+1 < 3), poll 100ms.
func fast(dsn, id string) Config {
	return Config{DSN: dsn, ReplicaID: id, AdvertiseURL: "http://" + id + ".test", TTL: 3 * time.Second,
		Renew: 500 * time.Millisecond, StopMargin: time.Second, Poll: 100 * time.Millisecond}
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.ReplicaID, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// sim plays the service: for every session and replica, a loop that
// acquires, "connects", waits for Lost, "disconnects" and releases. It
// records a violation whenever a session is connected by two replicas at
// once (the property the leases exist for).
type sim struct {
	mu         sync.Mutex
	conn       map[string]string // session -> replica connected now
	connects   map[string]int    // replica -> connects
	violations []string
	wg         sync.WaitGroup
}

func newSim() *sim { return &sim{conn: map[string]string{}, connects: map[string]int{}} }

func (s *sim) run(ctx context.Context, m *Manager, id string) { s.runWith(ctx, m, id, nil) }

// runWith is run calling connected (when not nil) while the session is
// connected; it returns when Lost closes or ctx ends.
func (s *sim) runWith(ctx context.Context, m *Manager, id string, connected func(*Lease)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for ctx.Err() == nil {
			l, err := m.AcquireLease(ctx, id)
			if err != nil {
				return
			}
			s.mu.Lock()
			if other := s.conn[id]; other != "" {
				s.violations = append(s.violations, fmt.Sprintf("%s connected by %s while %s holds it", id, m.cfg.ReplicaID, other))
			}
			s.conn[id] = m.cfg.ReplicaID
			s.connects[m.cfg.ReplicaID]++
			s.mu.Unlock()
			if connected != nil {
				connected(l)
			}
			select {
			case <-l.Lost():
			case <-ctx.Done():
			}
			s.mu.Lock()
			if s.conn[id] == m.cfg.ReplicaID {
				delete(s.conn, id)
			}
			s.mu.Unlock()
			l.Release()
		}
	}()
}

func (s *sim) count() (connected int, by map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	by = map[string]int{}
	for _, r := range s.conn {
		by[r]++
	}
	return len(s.conn), by
}

func (s *sim) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.violations {
		t.Error(v)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sessions(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s_%03d", i)
	}
	return ids
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{DSN: "x", TTL: 3 * time.Second, Renew: time.Second, StopMargin: time.Second}, // 2+1 = 3, not below
		{DSN: "x", ReplicaID: "a", TTL: 3 * time.Second, Renew: time.Second, StopMargin: time.Second},
		{DSN: "x", ReplicaID: "a", TTL: 10 * time.Second, Renew: 5 * time.Second},
		{ReplicaID: "a"},
		{DSN: "x", ReplicaID: "a", TTL: -time.Second},
	} {
		if _, err := New(t.Context(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", c, err)
		}
	}
	c := Config{DSN: "x", ReplicaID: "a"}
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.TTL != 15*time.Second || c.Renew != 5*time.Second || c.StopMargin != 3*time.Second || c.Slack != 1 {
		t.Errorf("defaults: %+v", c)
	}
}

// TestSpreadAndExclusive: three replicas wait on every one of 60
// sessions; each session is connected exactly once, and no replica holds
// more than ⌈N/R⌉+Slack.
func TestSpreadAndExclusive(t *testing.T) {
	dsn := testSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	ids := sessions(60)
	s := newSim()
	var ms []*Manager
	for _, r := range []string{"a", "b", "c"} {
		ms = append(ms, newManager(t, fast(dsn, r)))
	}
	for _, m := range ms {
		for _, id := range ids {
			s.run(ctx, m, id)
		}
	}
	limit := (len(ids)+2)/3 + 1
	waitFor(t, 15*time.Second, "every session connected and spread", func() bool {
		n, by := s.count()
		if n != len(ids) {
			return false
		}
		for _, c := range by {
			if c > limit {
				return false
			}
		}
		return true
	})
	// Stable: nothing moves for a few renewals.
	s.mu.Lock()
	before := map[string]int{}
	for r, c := range s.connects {
		before[r] = c
	}
	s.mu.Unlock()
	time.Sleep(time.Second)
	n, by := s.count()
	t.Logf("connected %d, by replica %v", n, by)
	if n != len(ids) {
		t.Errorf("%d sessions connected in a stable state, want %d", n, len(ids))
	}
	for _, m := range ms {
		st := m.Stats()
		if st.Held > limit {
			t.Errorf("%s holds %d > %d", m.cfg.ReplicaID, st.Held, limit)
		}
		if st.Replicas != 3 || st.Limit != limit {
			t.Errorf("%s stats %+v", m.cfg.ReplicaID, st)
		}
	}
	s.mu.Lock()
	for r, c := range s.connects {
		if c != before[r] {
			t.Errorf("%s connected again in a stable state (%d, was %d)", r, c, before[r])
		}
	}
	s.mu.Unlock()
	cancel()
	s.wg.Wait()
	s.check(t)
}

func TestTakeoverAfterExpiryAndFence(t *testing.T) {
	dsn := testSchema(t)
	ctx := t.Context()
	a := newManager(t, fast(dsn, "a"))
	b := newManager(t, fast(dsn, "b"))
	la, err := a.AcquireLease(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	// Freeze a as a SIGSTOP would: no renewal, no watchdog.
	resume := make(chan struct{})
	var once sync.Once
	unfreeze := func() { once.Do(func() { close(resume) }) }
	defer unfreeze()
	a.mu.Lock()
	a.renewHook = func() error { <-resume; return nil }
	a.watchHook = func() { <-resume }
	a.mu.Unlock()

	t0 := time.Now()
	lb, err := b.AcquireLease(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	if lb.Epoch() != la.Epoch()+1 {
		t.Errorf("takeover epoch %d, want %d", lb.Epoch(), la.Epoch()+1)
	}
	if took < a.cfg.TTL-a.cfg.Renew-100*time.Millisecond {
		t.Errorf("taken after %v, before the lease could expire", took)
	}
	select {
	case <-la.Lost():
		t.Fatal("a frozen replica closed Lost")
	default:
	}
	// Its watchdog has not run, but its own clock already says no: what a
	// resumed process checks before dialing.
	if err := la.Check(); !errors.Is(err, ErrLost) {
		t.Errorf("Check of an overdue lease: %v, want ErrLost", err)
	}
	if err := lb.Check(); err != nil {
		t.Errorf("Check of the new holder's lease: %v", err)
	}
	if rid, url, ok, err := b.Owner(ctx, "s1"); err != nil || !ok || rid != "b" || url != "http://b.test" {
		t.Errorf("Owner = %q %q %v %v", rid, url, ok, err)
	}
	// The old owner writes before it notices (a write racing the resume).
	if err := fenceWrite(ctx, a, la, ""); err == nil {
		t.Error("stale owner's write accepted")
	}
	unfreeze()
	select {
	case <-la.Lost():
	case <-time.After(2 * time.Second):
		t.Fatal("resumed replica did not find its lease lost")
	}
	if r := la.Reason(); r == "" {
		t.Error("no reason")
	}
	if err := fenceWrite(ctx, b, lb, ""); err != nil {
		t.Errorf("new owner's write: %v", err)
	}
	la.Release() // its release must not free b's lease
	time.Sleep(3 * a.cfg.Poll)
	if rid, _, ok, _ := b.Owner(ctx, "s1"); !ok || rid != "b" {
		t.Errorf("after a's release the owner is %q %v", rid, ok)
	}
	if st := a.Stats(); st.Fenced != 1 || st.Lost != 1 {
		t.Errorf("a stats %+v, want 1 fenced and 1 lost", st)
	}
}

// fenceWrite runs a write under l's fence the way serve's own writes do;
// with a logOp it also adds the write-log row, as the store's writes do.
func fenceWrite(ctx context.Context, m *Manager, l *Lease, logOp string) error {
	f := l.Fence()
	tx, err := m.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	q, args := f.CheckSQL()
	var owner string
	var epoch int64
	var live bool
	err = tx.QueryRow(ctx, q, args...).Scan(&owner, &epoch, &live)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if err := f.Verdict(err == nil, owner, epoch, live); err != nil {
		return err
	}
	if logOp != "" {
		q, args, ok := f.LogSQL(logOp)
		if !ok {
			return errors.New("write log off")
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// TestSelfStopBeforeExpiry: a replica that cannot renew closes Lost while
// its lease is still valid by the database's clock, so the connection is
// closed before anyone can take the session; it keeps the lease through
// one failed renewal.
func TestSelfStopBeforeExpiry(t *testing.T) {
	dsn := testSchema(t)
	ctx := t.Context()
	a := newManager(t, fast(dsn, "a"))
	l, err := a.AcquireLease(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fail := 0
	a.mu.Lock()
	a.renewHook = func() error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return errors.New("database unreachable (test)")
		}
		return nil
	}
	a.mu.Unlock()
	// One failed renewal: the lease stays, health reports it.
	mu.Lock()
	fail = 1
	mu.Unlock()
	waitFor(t, 3*time.Second, "a failed renewal", func() bool { return a.Stats().RenewFailures >= 1 })
	if a.Healthy() == nil {
		t.Error("Healthy after a failed renewal")
	}
	waitFor(t, 3*time.Second, "healthy again", func() bool { return a.Healthy() == nil })
	select {
	case <-l.Lost():
		t.Fatal("lease lost after one failed renewal")
	default:
	}
	// Renewals fail from now on.
	mu.Lock()
	fail = 1 << 30
	mu.Unlock()
	var lostAt time.Time
	select {
	case <-l.Lost():
		lostAt = time.Now()
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed while renewals fail")
	}
	var live bool
	var left time.Duration
	if err := a.pool.QueryRow(ctx, `SELECT expires_at > now(), (extract(epoch FROM expires_at - now()) * 1e9)::bigint FROM serve_leases WHERE session_id = 's1'`).Scan(&live, &left); err != nil {
		t.Fatal(err)
	}
	if !live {
		t.Fatalf("Lost closed after the database expired the lease (%v)", time.Since(lostAt))
	}
	t.Logf("Lost closed %v before the database's expiry (reason %q)", left, l.Reason())
	if l.Reason() != "renewal overdue" {
		t.Errorf("reason %q", l.Reason())
	}
}

// TestDrainHandsOver: a draining replica gives up everything and another
// takes each session within a few polls.
func TestDrainHandsOver(t *testing.T) {
	dsn := testSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ids := sessions(20)
	s := newSim()
	a := newManager(t, fast(dsn, "a"))
	for _, id := range ids {
		s.run(ctx, a, id)
	}
	waitFor(t, 10*time.Second, "a holds everything", func() bool { n, _ := s.count(); return n == len(ids) })
	b := newManager(t, fast(dsn, "b"))
	for _, id := range ids {
		s.run(ctx, b, id)
	}
	// b joined: a sheds down to ⌈20/2⌉+1 = 11 and b takes the rest, with
	// at most Shed sessions between owners at any moment.
	maxGap := 0
	waitFor(t, 10*time.Second, "rebalanced", func() bool {
		n, by := s.count()
		maxGap = max(maxGap, len(ids)-n)
		return n == len(ids) && by["a"] <= 11 && by["b"] <= 11
	})
	if maxGap > a.cfg.Shed {
		t.Errorf("%d sessions unconnected at once while rebalancing, want at most %d", maxGap, a.cfg.Shed)
	}
	_, by := s.count()
	t.Logf("after b joined: %v", by)
	t0 := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := a.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	dcancel()
	if a.Healthy() == nil {
		t.Error("a draining replica is healthy")
	}
	waitFor(t, 5*time.Second, "b holds everything", func() bool {
		n, by := s.count()
		return n == len(ids) && by["b"] == len(ids)
	})
	t.Logf("drain handed %d sessions over in %v", len(ids), time.Since(t0))
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("handover took %v", d)
	}
	rs, err := b.Replicas(ctx)
	if err != nil || len(rs) != 2 || !rs[0].Draining || rs[1].Leases != len(ids) {
		t.Errorf("Replicas = %+v, %v", rs, err)
	}
	cancel()
	s.wg.Wait()
	s.check(t)
}

// TestKilledReplicaTakenOver: a replica that vanishes (no release, no
// renewal) has its sessions taken by the others after the TTL; its
// replica row stops counting, so the survivors' bound grows.
func TestKilledReplicaTakenOver(t *testing.T) {
	dsn := testSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ids := sessions(30)
	s := newSim()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ms := map[string]*Manager{}
	for _, r := range []string{"a", "b", "c"} {
		cfg := fast(dsn, r)
		cfg.DSN, cfg.Pool = "", pool // a shared pool works as well
		ms[r] = newManager(t, cfg)
	}
	kctx, kill := context.WithCancel(ctx)
	for r, m := range ms {
		c := ctx
		if r == "c" {
			c = kctx
		}
		for _, id := range ids {
			s.run(c, m, id)
		}
	}
	waitFor(t, 10*time.Second, "all connected", func() bool { n, _ := s.count(); return n == len(ids) })
	// "SIGKILL" c: its loops stop dead, nothing is released.
	c := ms["c"]
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	kill()
	t0 := time.Now()
	waitFor(t, 10*time.Second, "survivors hold everything", func() bool {
		_, by := s.count()
		return by["a"]+by["b"] == len(ids)
	})
	t.Logf("sessions of the killed replica taken over in %v (TTL %v)", time.Since(t0), c.cfg.TTL)
	_, by := s.count()
	if by["a"] > 16 || by["b"] > 16 {
		t.Errorf("after the kill: %v, bound 16", by)
	}
	cancel()
	s.wg.Wait()
	s.check(t)
}

func TestAcquireCancelAndClose(t *testing.T) {
	dsn := testSchema(t)
	a := newManager(t, fast(dsn, "a"))
	b := newManager(t, fast(dsn, "b"))
	if _, err := a.AcquireLease(t.Context(), "s1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.AcquireLease(ctx, "s1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire of a held lease: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := b.AcquireLease(t.Context(), "s2x"); done <- err }()
	go func() { _, err := b.AcquireLease(t.Context(), "s1"); done <- err }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire pending at Close: %v", err)
	}
	if st := b.Stats(); st.Waiting != 0 {
		t.Errorf("waiters left: %+v", st)
	}
	// a's Close releases s1 at once: another manager gets it without
	// waiting for the TTL.
	a.Close()
	c := newManager(t, fast(dsn, "c"))
	t0 := time.Now()
	if _, err := c.AcquireLease(t.Context(), "s1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("acquired a closed replica's lease after %v", d)
	}
}

// TestWriteLog: fenced writes under successive holders pass the audit; a
// stale holder's write smuggled in after a newer epoch fails it.
func TestWriteLog(t *testing.T) {
	dsn := testSchema(t)
	ctx := t.Context()
	cfg := fast(dsn, "a")
	cfg.WriteLog = true
	a := newManager(t, cfg)
	cfg = fast(dsn, "b")
	cfg.WriteLog = true
	b := newManager(t, cfg)
	la, err := a.AcquireLease(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := fenceWrite(ctx, a, la, "put device"); err != nil {
			t.Fatal(err)
		}
	}
	la.Release()
	lb, err := b.AcquireLease(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := fenceWrite(ctx, b, lb, "put device"); err != nil {
		t.Fatal(err)
	}
	if err := fenceWrite(ctx, a, la, "put device"); err == nil {
		t.Fatal("released holder's write accepted")
	}
	n, err := CheckWriteLog(ctx, a.pool)
	if err != nil || n != 4 {
		t.Fatalf("CheckWriteLog = %d, %v; want 4 writes, no violation", n, err)
	}
	// What an unfenced stale write would leave behind.
	if _, err := a.pool.Exec(ctx, `INSERT INTO serve_write_log (session_id, owner, epoch, what) VALUES ('s1', 'a', $1, 'put device')`, la.Epoch()); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckWriteLog(ctx, a.pool); !errors.Is(err, ErrWriteLog) {
		t.Errorf("CheckWriteLog after a stale write: %v", err)
	} else {
		t.Log(err)
	}
}

// TestRowsDeleted: lease rows wiped by an operator are made again.
func TestRowsDeleted(t *testing.T) {
	dsn := testSchema(t)
	ctx := t.Context()
	a := newManager(t, fast(dsn, "a"))
	l, err := a.AcquireLease(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	waitFor(t, 5*time.Second, "released row", func() bool { _, _, ok, _ := a.Owner(ctx, "s1"); return !ok })
	if _, err := a.pool.Exec(ctx, `DELETE FROM serve_leases`); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l2, err := a.AcquireLease(actx, "s1")
	if err != nil {
		t.Fatalf("acquire after the rows were deleted: %v", err)
	}
	if l2.Epoch() <= l.Epoch() {
		t.Errorf("epoch %d on a new row after epoch %d: an epoch came back", l2.Epoch(), l.Epoch())
	}
}
