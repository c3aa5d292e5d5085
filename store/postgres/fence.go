package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// DefaultLeaseTable is the lease table a Fence checks when its Table is
// empty: the one serve/lease keeps.
const DefaultLeaseTable = "serve_leases"

// Fence names the lease a write must still hold. A fenced write first runs,
// in its own transaction,
//
//	SELECT owner, epoch, expires_at > now() FROM <Table> WHERE session_id = $1 FOR SHARE
//
// and goes on only when the row names Owner and Epoch and has not expired
// by the database's clock. The row lock serializes the write with a
// takeover (whose UPDATE of the row waits for the write to commit, or the
// write waits for the takeover and then sees the new epoch), so no write
// of an old holder commits after a new holder got the lease.
type Fence struct {
	// Key is the lease's key (a serve session id).
	Key string
	// Owner is the holder the lease must name (a replica id).
	Owner string
	// Epoch is the lease's epoch when it was acquired; every acquisition
	// gives a new, larger one.
	Epoch int64
	// Table is the lease table (columns session_id, owner, epoch,
	// expires_at), optionally schema-qualified. Default DefaultLeaseTable.
	Table string
	// WriteLog, when not empty, names a table (columns session_id, owner,
	// epoch, what; others defaulted) that every fenced write appends a row
	// to in its transaction: an audit of who wrote what under which epoch.
	WriteLog string
	// Refused, when set, is called once for every write the fence refuses
	// (metrics).
	Refused func()
}

// FenceError is the error of a refused write: it matches store.ErrFenced.
type FenceError struct {
	Key       string
	Owner     string
	Epoch     int64
	HeldBy    string // holder in the lease row ("" when free or missing)
	HeldEpoch int64
	Expired   bool // the row names this holder but expired by the database clock
	NoLease   bool // no lease was held when the write was made, or no row exists
}

func (e *FenceError) Error() string {
	switch {
	case e.NoLease:
		return fmt.Sprintf("postgres: write for %s refused: no lease held", e.Key)
	case e.Expired:
		return fmt.Sprintf("postgres: write for %s refused: lease epoch %d expired", e.Key, e.Epoch)
	}
	return fmt.Sprintf("postgres: write for %s refused: lease epoch %d of %q is now epoch %d of %q", e.Key, e.Epoch, e.Owner, e.HeldEpoch, e.HeldBy)
}

// Unwrap returns store.ErrFenced.
func (e *FenceError) Unwrap() error { return store.ErrFenced }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func (f Fence) table() string {
	if f.Table == "" {
		return DefaultLeaseTable
	}
	return f.Table
}

// Validate checks the table names (they are spliced into SQL) and the key.
func (f Fence) Validate() error {
	if f.Key == "" || f.Owner == "" {
		return fmt.Errorf("%w: fence without key or owner", ErrInvalid)
	}
	if !identRE.MatchString(f.table()) {
		return fmt.Errorf("%w: fence table name %q", ErrInvalid, f.Table)
	}
	if f.WriteLog != "" && !identRE.MatchString(f.WriteLog) {
		return fmt.Errorf("%w: write log table name %q", ErrInvalid, f.WriteLog)
	}
	return nil
}

// CheckSQL is the statement that checks the fence, for a caller running
// it in a transaction of its own (database/sql): scan owner (text), epoch
// (bigint) and live (bool) from its row and pass them to Verdict.
func (f Fence) CheckSQL() (query string, args []any) {
	return `SELECT owner, epoch, expires_at > now() FROM ` + f.table() + ` WHERE session_id = $1 FOR SHARE`, []any{f.Key}
}

// Verdict turns the row CheckSQL read (found=false: no row) into nil or a
// *FenceError, calling Refused for a refusal.
func (f Fence) Verdict(found bool, owner string, epoch int64, live bool) error {
	var err *FenceError
	switch {
	case !found:
		err = &FenceError{Key: f.Key, Owner: f.Owner, Epoch: f.Epoch, NoLease: true}
	case owner != f.Owner || epoch != f.Epoch:
		err = &FenceError{Key: f.Key, Owner: f.Owner, Epoch: f.Epoch, HeldBy: owner, HeldEpoch: epoch}
	case !live:
		err = &FenceError{Key: f.Key, Owner: f.Owner, Epoch: f.Epoch, HeldBy: owner, HeldEpoch: epoch, Expired: true}
	default:
		return nil
	}
	if f.Refused != nil {
		f.Refused()
	}
	return err
}

// LogSQL is the write-log insert for a write described by what; ok=false
// when the write log is off.
func (f Fence) LogSQL(what string) (query string, args []any, ok bool) {
	if f.WriteLog == "" {
		return "", nil, false
	}
	return `INSERT INTO ` + f.WriteLog + ` (session_id, owner, epoch, what) VALUES ($1, $2, $3, $4)`,
		[]any{f.Key, f.Owner, f.Epoch, what}, true
}

// check runs the fence (and the write-log row) in tx.
func (f Fence) check(ctx context.Context, tx pgx.Tx, what string) error {
	if err := f.Validate(); err != nil {
		return err
	}
	q, args := f.CheckSQL()
	var owner string
	var epoch int64
	var live bool
	err := tx.QueryRow(ctx, q, args...).Scan(&owner, &epoch, &live)
	found := true
	if errors.Is(err, pgx.ErrNoRows) {
		found, err = false, nil
	}
	if err != nil {
		return err
	}
	if err := f.Verdict(found, owner, epoch, live); err != nil {
		return err
	}
	if q, args, ok := f.LogSQL(what); ok {
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// Fenced returns a view of s whose writes (PutDevice, DeleteDevice,
// PutPreKeys) check f in their transaction and fail with a *FenceError
// (store.ErrFenced) once the lease is no longer held. Reads are not
// fenced. Closing the view does not close s.
func (s *Store) Fenced(f Fence) store.Store {
	return s.FencedBy(func() (Fence, bool) { return f, true })
}

// FencedBy is Fenced with the fence looked up at every write: for a view
// made before its lease is acquired. ok=false refuses the write (no lease
// held yet, or any more).
func (s *Store) FencedBy(fence func() (Fence, bool)) store.Store {
	return &fenced{s: s, fence: fence}
}

type fenced struct {
	s     *Store
	fence func() (Fence, bool)
}

var _ store.Store = (*fenced)(nil)

func (v *fenced) current() (*Fence, error) {
	f, ok := v.fence()
	if !ok {
		if f.Refused != nil {
			f.Refused()
		}
		return nil, &FenceError{Key: f.Key, NoLease: true}
	}
	return &f, nil
}

func (v *fenced) Devices(ctx context.Context) ([]*store.Device, error) { return v.s.Devices(ctx) }
func (v *fenced) Device(ctx context.Context, pub keys.PublicKey) (*store.Device, error) {
	return v.s.Device(ctx, pub)
}
func (v *fenced) DeviceByJID(ctx context.Context, id jid.JID) (*store.Device, error) {
	return v.s.DeviceByJID(ctx, id)
}
func (v *fenced) PreKey(ctx context.Context, pub keys.PublicKey, id uint32) (keys.PreKey, error) {
	return v.s.PreKey(ctx, pub, id)
}
func (v *fenced) PreKeyCount(ctx context.Context, pub keys.PublicKey) (int, error) {
	return v.s.PreKeyCount(ctx, pub)
}
func (v *fenced) LIDForPhone(ctx context.Context, phone jid.JID) (jid.JID, error) {
	return v.s.LIDForPhone(ctx, phone)
}
func (v *fenced) Close() error { return nil }

func (v *fenced) PutDevice(ctx context.Context, d *store.Device) error {
	f, err := v.current()
	if err != nil {
		return fmt.Errorf("postgres: put device: %w", err)
	}
	return v.s.putDevice(ctx, d, f)
}

func (v *fenced) DeleteDevice(ctx context.Context, pub keys.PublicKey) error {
	f, err := v.current()
	if err != nil {
		return fmt.Errorf("postgres: delete device: %w", err)
	}
	return v.s.deleteDevice(ctx, pub, f)
}

func (v *fenced) PutPreKeys(ctx context.Context, pub keys.PublicKey, pks []keys.PreKey, next uint32) error {
	f, err := v.current()
	if err != nil {
		return fmt.Errorf("postgres: put pre-keys: %w", err)
	}
	return v.s.putPreKeys(ctx, pub, pks, next, f)
}
