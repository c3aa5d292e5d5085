package serve

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/postgres"
)

// tableOwner is an Owner whose leases are rows of a lease table shaped
// like serve/lease's (which cannot be imported here: it imports serve), so
// that the service's fencing runs against real rows.
type tableOwner struct {
	db      atomic.Pointer[sql.DB]
	id      string
	refused atomic.Int64

	mu     sync.Mutex
	leases map[string]*tableLease
}

type tableLease struct {
	o     *tableOwner
	id    string
	epoch int64
	lost  chan struct{}
	once  sync.Once
}

func (o *tableOwner) Acquire(ctx context.Context, id string) (Lease, error) {
	var epoch int64
	err := o.db.Load().QueryRowContext(ctx, `INSERT INTO serve_leases (session_id, owner, epoch, expires_at) VALUES ($1, $2, 1, now() + interval '1 hour')
		ON CONFLICT (session_id) DO UPDATE SET owner = EXCLUDED.owner, epoch = serve_leases.epoch + 1, expires_at = EXCLUDED.expires_at
		RETURNING epoch`, id, o.id).Scan(&epoch)
	if err != nil {
		return nil, err
	}
	l := &tableLease{o: o, id: id, epoch: epoch, lost: make(chan struct{})}
	o.mu.Lock()
	o.leases[id] = l
	o.mu.Unlock()
	return l, nil
}

func (l *tableLease) Lost() <-chan struct{} { return l.lost }
func (l *tableLease) Release()              { l.once.Do(func() { close(l.lost) }) }
func (l *tableLease) Fence() postgres.Fence {
	return postgres.Fence{Key: l.id, Owner: l.o.id, Epoch: l.epoch, WriteLog: "serve_write_log", Refused: func() { l.o.refused.Add(1) }}
}

// TestFencedSessionWrites: under a fenced lease the client's store writes
// and the service's own session writes carry the lease (write log); after
// a takeover the old holder's writes (the "ownership lost" status) are
// refused and counted, and nothing of it lands in the store.
func TestFencedSessionWrites(t *testing.T) {
	owner := &tableOwner{id: "r1", leases: map[string]*tableLease{}}
	e := newEnv(t, envOpts{postgres: true, mutate: func(c *Config) { c.Owner = owner }})
	db := e.db.db
	if _, err := db.Exec(`CREATE TABLE serve_leases (session_id TEXT PRIMARY KEY, owner TEXT NOT NULL DEFAULT '',
			epoch BIGINT NOT NULL DEFAULT 0, expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity');
		CREATE TABLE serve_write_log (id BIGSERIAL PRIMARY KEY, session_id TEXT NOT NULL, owner TEXT NOT NULL,
			epoch BIGINT NOT NULL, what TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	owner.db.Store(db)
	id := e.linkQR("15550007777")

	whats := map[string]int{}
	rows, err := db.Query(`SELECT what, owner, epoch FROM serve_write_log WHERE session_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var what, own string
		var epoch int64
		if err := rows.Scan(&what, &own, &epoch); err != nil {
			t.Fatal(err)
		}
		if own != "r1" || epoch != 1 {
			t.Errorf("write logged by %s epoch %d", own, epoch)
		}
		whats[what]++
	}
	rows.Close()
	t.Logf("writes under the lease: %v", whats)
	if whats["put device"] == 0 || whats["session"] == 0 {
		t.Fatalf("write log %v lacks the device or session writes", whats)
	}
	if owner.refused.Load() != 0 {
		t.Fatalf("%d writes refused under a held lease", owner.refused.Load())
	}

	// Another replica takes the lease over; then this one notices.
	var mark int64
	if err := db.QueryRow(`SELECT coalesce(max(id), 0) FROM serve_write_log`).Scan(&mark); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE serve_leases SET owner = 'r2', epoch = epoch + 1 WHERE session_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	owner.mu.Lock()
	l := owner.leases[id]
	owner.mu.Unlock()
	l.Release() // closes Lost: the service stops the connection
	deadline := time.Now().Add(10 * time.Second)
	for owner.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the old holder's status write was not refused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ss := e.svc.get(id)
	ss.mu.Lock()
	cli, st := ss.cli, ss.rec.Status
	ss.mu.Unlock()
	if cli != nil {
		t.Error("client still running after the lease was lost")
	}
	var dbStatus string
	if err := db.QueryRow(`SELECT status FROM serve_sessions WHERE id = $1`, id).Scan(&dbStatus); err != nil {
		t.Fatal(err)
	}
	if dbStatus != string(StatusConnected) || st != StatusConnected {
		t.Errorf("status after a refused write: db %s, memory %s; want the record untouched", dbStatus, st)
	}
	var after int
	if err := db.QueryRow(`SELECT count(*) FROM serve_write_log WHERE id > $1`, mark).Scan(&after); err != nil || after != 0 {
		t.Errorf("%d writes logged after the takeover (%v)", after, err)
	}

	// A fenced view refuses store writes once its lease is gone, with
	// store.ErrFenced; its dial gate refuses to dial.
	ls := newLeaseStore(e.st)
	if err := ls.PutDevice(context.Background(), &store.Device{}); !errors.Is(err, store.ErrFenced) {
		t.Errorf("write before bind: %v", err)
	}
	if err := ls.bind(l); err != nil {
		t.Fatal(err)
	}
	devs, err := e.st.Devices(context.Background())
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices: %d, %v", len(devs), err)
	}
	if err := ls.PutDevice(context.Background(), devs[0]); !errors.Is(err, store.ErrFenced) {
		t.Errorf("write through a lost lease: %v", err)
	}
	if _, err := ls.gated(walink.Config{}).DialGate(context.Background()); !errors.Is(err, errNoLease) {
		t.Errorf("dial gate under a lost lease: %v", err)
	}
}

// TestLeaseDialGate: a session's client dials only while its lease holds
// by the lease's own check, before and after the service's gate.
func TestLeaseDialGate(t *testing.T) {
	ls := newLeaseStore(nil)
	slots := 0
	cfg := ls.gated(walink.Config{DialGate: func(context.Context) (func(), error) {
		slots++
		return func() { slots-- }, nil
	}})
	if _, err := cfg.DialGate(context.Background()); !errors.Is(err, errNoLease) {
		t.Fatalf("dial before the lease: %v", err)
	}
	l := &checkedLease{lost: make(chan struct{})}
	if err := ls.bind(l); err != nil {
		t.Fatal(err)
	}
	rel, err := cfg.DialGate(context.Background())
	if err != nil || slots != 1 {
		t.Fatalf("dial under the lease: %v (slots %d)", err, slots)
	}
	rel()
	l.overdue.Store(true)
	if _, err := cfg.DialGate(context.Background()); !errors.Is(err, errNoLease) || slots != 0 {
		t.Errorf("dial past the lease's deadline: %v (slots %d)", err, slots)
	}
	l.overdue.Store(false)
	close(l.lost)
	if _, err := cfg.DialGate(context.Background()); !errors.Is(err, errNoLease) || slots != 0 {
		t.Errorf("dial after Lost: %v (slots %d)", err, slots)
	}
}

type checkedLease struct {
	lost    chan struct{}
	overdue atomic.Bool
}

func (l *checkedLease) Lost() <-chan struct{} { return l.lost }
func (l *checkedLease) Release()              {}
func (l *checkedLease) Check() error {
	if l.overdue.Load() {
		return errors.New("renewal overdue")
	}
	return nil
}
