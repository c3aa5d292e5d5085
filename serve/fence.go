package serve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

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

// leaseStore is the store a session's client writes through. Until the
// connect goroutine binds the lease its writes are refused (the client
// writes nothing before Connect); then they go through the lease's fenced
// view, or straight to the store for a lease that is not fenced (the
// single-process Owner). Reads are never fenced.
type leaseStore struct {
	store.Store
	w atomic.Pointer[store.Store]
}

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
	ls.w.Store(&w)
	return nil
}

func (ls *leaseStore) writer() (store.Store, error) {
	if w := ls.w.Load(); w != nil {
		return *w, nil
	}
	return nil, fmt.Errorf("serve: store write before the session's lease: %w", store.ErrFenced)
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
