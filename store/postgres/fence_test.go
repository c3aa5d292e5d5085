package postgres

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

// leaseTables creates a lease table and a write log shaped like
// serve/lease's, in the test's schema.
func leaseTables(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.pool.Exec(t.Context(), `CREATE TABLE serve_leases (session_id TEXT PRIMARY KEY, owner TEXT NOT NULL DEFAULT '',
			epoch BIGINT NOT NULL DEFAULT 0, expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity');
		CREATE TABLE serve_write_log (id BIGSERIAL PRIMARY KEY, session_id TEXT NOT NULL, owner TEXT NOT NULL,
			epoch BIGINT NOT NULL, what TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
}

func setLease(t *testing.T, s *Store, key, owner string, epoch int64, ttl time.Duration) {
	t.Helper()
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO serve_leases (session_id, owner, epoch, expires_at)
		VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')
		ON CONFLICT (session_id) DO UPDATE SET owner = EXCLUDED.owner, epoch = EXCLUDED.epoch, expires_at = EXCLUDED.expires_at`,
		key, owner, epoch, ttl.Microseconds()); err != nil {
		t.Fatal(err)
	}
}

func TestFencedWrites(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	leaseTables(t, s)
	var refused atomic.Int64
	fence := Fence{Key: "s1", Owner: "a", Epoch: 1, WriteLog: "serve_write_log", Refused: func() { refused.Add(1) }}
	v := s.Fenced(fence)
	d := storetest.NewDevice(t, 1, true)

	// No lease row: refused.
	if err := v.PutDevice(ctx, d); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("PutDevice without a lease row: %v, want ErrFenced", err)
	}
	setLease(t, s, "s1", "a", 1, time.Minute)
	if err := v.PutDevice(ctx, d); err != nil {
		t.Fatalf("PutDevice under the lease: %v", err)
	}
	if err := v.PutPreKeys(ctx, d.NoiseKey.Public, storetest.NewPreKeys(t, 2, 1, 3), 4); err != nil {
		t.Fatalf("PutPreKeys under the lease: %v", err)
	}
	// Reads pass through.
	if _, err := v.Device(ctx, d.NoiseKey.Public); err != nil {
		t.Fatal(err)
	}

	// Taken over (epoch 2 by b): every write refused, nothing changed.
	setLease(t, s, "s1", "b", 2, time.Minute)
	d2 := *d
	d2.PushName = "stale owner"
	for name, write := range map[string]func() error{
		"PutDevice":    func() error { return v.PutDevice(ctx, &d2) },
		"PutPreKeys":   func() error { return v.PutPreKeys(ctx, d.NoiseKey.Public, storetest.NewPreKeys(t, 3, 10, 2), 12) },
		"DeleteDevice": func() error { return v.DeleteDevice(ctx, d.NoiseKey.Public) },
	} {
		err := write()
		var fe *FenceError
		if !errors.Is(err, store.ErrFenced) || !errors.As(err, &fe) || fe.HeldBy != "b" || fe.HeldEpoch != 2 {
			t.Errorf("%s after takeover: %v, want a FenceError held by b at epoch 2", name, err)
		}
	}
	got, err := s.Device(ctx, d.NoiseKey.Public)
	if err != nil || got.PushName != d.PushName || got.NextPreKeyID != 4 {
		t.Fatalf("device after refused writes: %+v, %v", got, err)
	}
	if n, _ := s.PreKeyCount(ctx, d.NoiseKey.Public); n != 3 {
		t.Errorf("pre-keys after refused writes: %d, want 3", n)
	}

	// Same owner, same epoch, but expired by the database clock: refused.
	setLease(t, s, "s1", "a", 1, -time.Second)
	err = v.PutDevice(ctx, d)
	var fe *FenceError
	if !errors.As(err, &fe) || !fe.Expired {
		t.Errorf("PutDevice on an expired lease: %v, want Expired", err)
	}
	if got := refused.Load(); got != 5 {
		t.Errorf("refused %d writes, want 5", got)
	}
	// The write log holds exactly the two accepted writes.
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM serve_write_log WHERE session_id = 's1' AND owner = 'a' AND epoch = 1`).Scan(&n); err != nil || n != 2 {
		t.Errorf("write log rows: %d, %v; want 2", n, err)
	}

	// FencedBy without a lease refuses.
	nv := s.FencedBy(func() (Fence, bool) { return Fence{Key: "s1"}, false })
	if err := nv.PutDevice(ctx, d); !errors.Is(err, store.ErrFenced) {
		t.Errorf("FencedBy without lease: %v", err)
	}
	// A bad table name is refused before any SQL.
	bad := s.Fenced(Fence{Key: "s1", Owner: "a", Epoch: 1, Table: "x; DROP TABLE walink_devices"})
	if err := bad.PutDevice(ctx, d); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad table name: %v, want ErrInvalid", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Device(ctx, d.NoiseKey.Public); err != nil {
		t.Errorf("closing a view closed the store: %v", err)
	}
}

// TestFenceSerializesWithTakeover: a takeover's UPDATE of the lease row
// waits for a fenced write in flight, and a write that starts after the
// takeover sees the new epoch: no write of the old holder commits after
// the new holder got the lease.
func TestFenceSerializesWithTakeover(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	leaseTables(t, s)
	setLease(t, s, "s1", "a", 1, time.Minute)
	d := storetest.NewDevice(t, 1, true)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	inTx := make(chan struct{})
	proceed := make(chan struct{})
	s.hook = func(step string) error {
		if step == "device" {
			close(inTx)
			<-proceed
		}
		return nil
	}
	v := s.Fenced(Fence{Key: "s1", Owner: "a", Epoch: 1})
	werr := make(chan error, 1)
	go func() { werr <- v.PutDevice(ctx, d) }()
	<-inTx
	// The takeover blocks on the row lock the write holds.
	took := make(chan error, 1)
	var tookAt, committedAt atomic.Int64
	go func() {
		_, err := s.pool.Exec(ctx, `UPDATE serve_leases SET owner = 'b', epoch = epoch + 1 WHERE session_id = 's1'`)
		tookAt.Store(time.Now().UnixNano())
		took <- err
	}()
	select {
	case err := <-took:
		t.Fatalf("takeover did not wait for the write in flight: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	committedAt.Store(time.Now().UnixNano())
	close(proceed)
	if err := <-werr; err != nil {
		t.Fatalf("write begun under the lease: %v", err)
	}
	if err := <-took; err != nil {
		t.Fatal(err)
	}
	if tookAt.Load() < committedAt.Load() {
		t.Error("takeover finished before the write committed")
	}
	s.hook = nil
	if err := v.PutDevice(ctx, d); !errors.Is(err, store.ErrFenced) {
		t.Errorf("write after the takeover: %v, want ErrFenced", err)
	}
}
