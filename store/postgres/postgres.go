package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walinkdev/walink/store"
)

const pkgName = "postgres"

// Errors returned by this package.
var (
	// ErrInvalid reports a record the store refuses to write (nil device,
	// zero noise key, pre-key id out of range, time out of range).
	ErrInvalid = errors.New("postgres: invalid record")
	// ErrCorrupt reports a stored row that does not decode. The message
	// names the column, never the value.
	ErrCorrupt = errors.New("postgres: corrupt record")
	// ErrSchemaTooNew is matched by *SchemaVersionError.
	ErrSchemaTooNew = errors.New("postgres: database schema is newer than this version of walink")
)

// SchemaVersionError reports tables written by a newer walink: migrations
// were applied that this build does not know, so it could misread rows.
type SchemaVersionError struct {
	Version int // newest applied in the database
	Known   int // newest this build knows
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("postgres: database schema version %d is newer than the newest this walink knows (%d)", e.Version, e.Known)
}

// Unwrap returns ErrSchemaTooNew.
func (e *SchemaVersionError) Unwrap() error { return ErrSchemaTooNew }

// Option changes how the store is opened.
type Option func(*config)

type config struct {
	logger *slog.Logger
	cipher Cipher
}

// WithLogger sets where the store logs migrations (default: nowhere). Keys
// and secrets are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Store is a store.Store in PostgreSQL tables named walink_*, in the first
// schema of the connection's search_path. It is safe for concurrent use,
// also by several processes.
type Store struct {
	pool    *pgxpool.Pool
	ownPool bool
	log     *slog.Logger
	sec     secrets

	closeOnce sync.Once

	// hook, when set by tests, runs between the statements of a write
	// transaction; an error from it aborts the transaction.
	hook func(step string) error
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as pgx accepts; add search_path=... to pick a schema) and brings
// the schema up to date. Close closes the pool.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors can echo the connection string, password
		// included, so only a generic message is kept.
		return nil, errors.New("postgres: open: cannot parse the connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(ctx, "open", err)
	}
	s, err := newStore(ctx, pool, true, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// OpenPool uses a pool the caller owns (and closes after the store): the
// store's Close leaves it open.
func OpenPool(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("postgres: open: nil pool")
	}
	return newStore(ctx, pool, false, opts)
}

func newStore(ctx context.Context, pool *pgxpool.Pool, own bool, opts []Option) (*Store, error) {
	cfg := config{}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{pool: pool, ownPool: own, log: cfg.logger, sec: newSecrets(cfg.cipher)}
	if err := migrate(ctx, pool, migrations, cfg.logger, 0); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the pool if Open made it. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.ownPool {
			s.pool.Close()
		}
	})
	return nil
}

// fail wraps err from operation op, adding the context's error when ctx is
// done so callers can test for cancellation with errors.Is.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("postgres: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// write runs fn in one transaction.
func (s *Store) write(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	return s.writeFenced(ctx, op, nil, fn)
}

// writeFenced runs fn in one transaction, after checking fence (when not
// nil) first: the lease row is locked before any row of the write, the
// same order for every fenced writer.
func (s *Store) writeFenced(ctx context.Context, op string, fence *Fence, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fail(ctx, op, err)
	}
	if fence != nil {
		if err := fence.check(ctx, tx, op); err != nil {
			rollback(ctx, tx)
			if errors.Is(err, store.ErrFenced) || errors.Is(err, ErrInvalid) {
				return fmt.Errorf("postgres: %s: %w", op, err)
			}
			return fail(ctx, op+": fence", err)
		}
	}
	if err := fn(tx); err != nil {
		rollback(ctx, tx)
		if errors.Is(err, ErrInvalid) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fail(ctx, op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

// rollback ends a failed transaction. It runs even when ctx is already done
// (the usual reason for the failure), so the connection goes back to the
// pool clean instead of being torn down; if it fails, pgx closes the
// connection and the server discards the transaction anyway.
func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(rctx)
}

func (s *Store) step(name string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(name)
}

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var migrations = mustLoadMigrations(migrationFS)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err) // embedded files only: caught by any test run
	}
	return ms
}

// loadMigrations reads migrations/NNNN_name.sql, numbered 1, 2, 3, … with
// no gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("postgres: migration %s: name must start with a positive number and '_'", base)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate applies the pending migrations up to target (0: all) in one
// transaction, under a transaction-scoped advisory lock keyed by the
// schema: PostgreSQL's DDL is transactional, so the schema moves all the
// way or not at all, and concurrent openers of one schema wait for each
// other instead of racing on CREATE TABLE.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration, log *slog.Logger, target int) error {
	if target == 0 {
		target = len(ms)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fail(ctx, "migrate", err)
	}
	defer rollback(ctx, tx) // no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('walink schema ' || coalesce(current_schema(), '')))`); err != nil {
		return fail(ctx, "migrate: lock", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS walink_schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fail(ctx, "migrate", err)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM walink_schema_migrations`).Scan(&have); err != nil {
		return fail(ctx, "migrate", err)
	}
	if have > len(ms) {
		return &SchemaVersionError{Version: have, Known: len(ms)}
	}
	var applied []string
	for _, m := range ms[min(have, target):target] {
		// No arguments: pgx sends the file with the simple protocol, which
		// runs several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fail(ctx, "migrate to "+m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO walink_schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fail(ctx, "migrate to "+m.name, err)
		}
		applied = append(applied, m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(ctx, "migrate", err)
	}
	for _, name := range applied {
		log.Info("postgres: applied migration", "migration", name)
	}
	return nil
}
