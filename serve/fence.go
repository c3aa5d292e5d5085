package serve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/walinkdev/walink"

	wkeys "github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/postgres"
)

// FencedLease is a Lease whose holder's writes are fenced in PostgreSQL
// (serve/lease): the session's client writes the store through
// (*postgres.Store).Fenced(Fence()), and the service checks Fence in the
// same transaction as each of its own writes of the session (record,
// events, outbox), so nothing is written under a lease that was lost.
type FencedLease interface {
	Lease
	Fence() postgres.Fence
}

// LeaseRows is an Owner whose leases are rows in the service's
// PostgreSQL database (serve/lease). ForgetSQL returns the statement that
// removes session id's lease row; the service runs it in the transaction
// that deletes the session's row, so a deleted session leaves no lease
// behind and a failed deletion leaves both.
type LeaseRows interface {
	ForgetSQL(id string) (query string, args []any)
}

// leaseStore is the store a session's client writes through. Until the
// connect goroutine binds the lease its writes are refused (the client
// writes nothing before Connect); then they go through the lease's fenced
// view, or straight to the store for a lease that is not fenced (the
// single-process Owner). Reads are never fenced.
type leaseStore struct {
	store.Store
	b atomic.Pointer[binding]
}

type binding struct {
	w store.Store
	l Lease
}

// leaseChecker is a Lease that can tell by its holder's own clock whether
// it still holds (serve/lease's Check), with no database round trip.
type leaseChecker interface{ Check() error }

func newLeaseStore(st store.Store) *leaseStore { return &leaseStore{Store: st} }

// bind sets where writes go for lease l; an error leaves them refused.
func (ls *leaseStore) bind(l Lease) error {
	var w store.Store = ls.Store
	if fl, ok := l.(FencedLease); ok {
		ps, ok := ls.Store.(*postgres.Store)
		if !ok {
			return errors.New("serve: a fenced lease needs the PostgreSQL store")
		}
		w = ps.Fenced(fl.Fence())
	}
	ls.b.Store(&binding{w: w, l: l})
	return nil
}

func (ls *leaseStore) writer() (store.Store, error) {
	if b := ls.b.Load(); b != nil {
		return b.w, nil
	}
	return nil, fmt.Errorf("serve: store write before the session's lease: %w", store.ErrFenced)
}

// errNoLease refuses a dial without the session's lease.
var errNoLease = errors.New("serve: the session's lease is not held")

// check reports whether the bound lease still holds, by this process's
// clock: not bound yet, Lost closed, or (Check) past its self-stop
// deadline all refuse.
func (ls *leaseStore) check() error {
	b := ls.b.Load()
	if b == nil {
		return errNoLease
	}
	if lost := b.l.Lost(); lost != nil {
		select {
		case <-lost:
			return errNoLease
		default:
		}
	}
	if c, ok := b.l.(leaseChecker); ok {
		if err := c.Check(); err != nil {
			return fmt.Errorf("%w: %w", errNoLease, err)
		}
	}
	return nil
}

// gated returns cfg whose DialGate first checks the bound lease: a
// client never dials (nor redials after a drop) without it, even in the
// moment between a lease running out and the service closing the client
// (e.g. a process resumed after a pause, before its watchdog ran). The
// check runs again after waiting for cfg's own gate.
func (ls *leaseStore) gated(cfg walink.Config) walink.Config {
	base := cfg.DialGate
	cfg.DialGate = func(ctx context.Context) (func(), error) {
		if err := ls.check(); err != nil {
			return nil, err
		}
		if base == nil {
			return func() {}, nil
		}
		release, err := base(ctx)
		if err != nil {
			return nil, err
		}
		if err := ls.check(); err != nil {
			if release != nil {
				release()
			}
			return nil, err
		}
		return release, nil
	}
	return cfg
}

func (ls *leaseStore) PutDevice(ctx context.Context, d *store.Device) error {
	w, err := ls.writer()
	if err != nil {
		return err
	}
	return w.PutDevice(ctx, d)
}

func (ls *leaseStore) DeleteDevice(ctx context.Context, pub wkeys.PublicKey) error {
	w, err := ls.writer()
	if err != nil {
		return err
	}
	return w.DeleteDevice(ctx, pub)
}

func (ls *leaseStore) PutPreKeys(ctx context.Context, pub wkeys.PublicKey, pks []wkeys.PreKey, next uint32) error {
	w, err := ls.writer()
	if err != nil {
		return err
	}
	return w.PutPreKeys(ctx, pub, pks, next)
}

// Close does nothing: the store is shared by every session.
func (ls *leaseStore) Close() error { return nil }

var _ store.Store = (*leaseStore)(nil)

// leaseFence returns the fence of l, or nil for a lease that is not fenced.
func leaseFence(l Lease) *postgres.Fence {
	if fl, ok := l.(FencedLease); ok {
		f := fl.Fence()
		return &f
	}
	return nil
}

// checkFence runs f's check (and its write-log row, what) in tx, the
// service's own write of the session: refused with store.ErrFenced when the
// lease is no longer held.
func (d *DB) checkFence(ctx context.Context, tx *sql.Tx, f *postgres.Fence, what string) error {
	if f == nil {
		return nil
	}
	if d.dialect != Postgres {
		return errors.New("serve: a fenced lease needs the PostgreSQL database")
	}
	if err := f.Validate(); err != nil {
		return err
	}
	q, args := f.CheckSQL()
	var owner string
	var epoch int64
	var live bool
	err := tx.QueryRowContext(ctx, q, args...).Scan(&owner, &epoch, &live)
	found := true
	if errors.Is(err, sql.ErrNoRows) {
		found, err = false, nil
	}
	if err != nil {
		return fmt.Errorf("serve: fence: %w", err)
	}
	if err := f.Verdict(found, owner, epoch, live); err != nil {
		return err
	}
	if q, args, ok := f.LogSQL(what); ok {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("serve: write log: %w", err)
		}
	}
	return nil
}
