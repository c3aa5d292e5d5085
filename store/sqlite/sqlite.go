package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)

	"github.com/walinkdev/walink/store"
)

const pkgName = "sqlite"

// Errors returned by this package.
var (
	// ErrInsecure is matched (errors.Is) by *InsecureFileError.
	ErrInsecure = errors.New("sqlite: database file or directory is writable by group or others")
	// ErrInvalid reports a record the store refuses to write (nil device,
	// zero noise key, pre-key id out of range, time out of range).
	ErrInvalid = errors.New("sqlite: invalid record")
	// ErrCorrupt reports a stored row that does not decode (wrong key
	// length, value out of range). The message names the column, never the
	// value.
	ErrCorrupt = errors.New("sqlite: corrupt record")
	// ErrSchemaTooNew is matched by *SchemaVersionError.
	ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this version of walink")
)

// InsecureFileError reports a database file, a journal file beside it, or
// the directory holding them that users other than the owner can write:
// anyone who can write there can replace the session keys.
type InsecureFileError struct {
	Path string
	Mode uint32 // permission bits found
	Dir  bool   // Path is the directory holding the store
}

func (e *InsecureFileError) Error() string {
	if e.Dir {
		// chmod is the wrong advice for a shared directory such as /tmp:
		// the store belongs elsewhere.
		return fmt.Sprintf("sqlite: directory %s is writable by group or others (mode %#o), who could swap the store or plant a journal in it; keep the store in a directory only you can write (or chmod go-w it, if it is yours)", e.Path, e.Mode)
	}
	return fmt.Sprintf("sqlite: %s is writable by group or others (mode %#o); run chmod go-w on it", e.Path, e.Mode)
}

// Unwrap returns ErrInsecure.
func (e *InsecureFileError) Unwrap() error { return ErrInsecure }

// SchemaVersionError reports a database written by a newer walink: its
// schema version is above every migration this build knows, so opening it
// could misread rows.
type SchemaVersionError struct {
	Version int // found in the file
	Known   int // newest this build knows
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("sqlite: database schema version %d is newer than the newest this walink knows (%d)", e.Version, e.Known)
}

// Unwrap returns ErrSchemaTooNew.
func (e *SchemaVersionError) Unwrap() error { return ErrSchemaTooNew }

// Memory is the path that opens a private in-memory store, gone on Close.
const Memory = ":memory:"

// DefaultBusyTimeout is how long a write waits for another process holding
// the database's write lock before it fails.
const DefaultBusyTimeout = 10 * time.Second

// DefaultCacheSize is the page cache each connection keeps, in KiB,
// unless WithCacheSize says otherwise.
//
// SQLite's own default, 2000 KiB, is per connection, and a Store holds
// 1 + WithReaders of them. Under the pure-Go driver each cached 4 KiB page
// takes an 8 KiB block of the driver's C heap (page, header and the
// allocator's size prefix round up to a power of two), outside the Go heap,
// and the driver keeps freed blocks mapped: up to ~3.7 MiB of RSS per
// connection. Measured with bench/cmd/sessions (500 linked devices in one
// store), 256 KiB instead of 2000 cut the process's RSS by ~3.8 MB; reads
// and writes on a store of 300 devices (BenchmarkBigStore, far larger than
// either cache) ran at the same speed, since a page that fell out is read
// back from the OS's file cache. Below ~128 KiB a batch of 812 pre-keys no
// longer fits and spills mid-transaction (64 KiB: link writes ~1.6×
// slower). The default's cost: up to ~0.5 MiB of RSS per connection,
// ~2.5 MiB for a Store with the default 4 readers.
const DefaultCacheSize = 256

// Option changes how Open opens the store.
type Option func(*config)

type config struct {
	logger      *slog.Logger
	busyTimeout time.Duration
	readers     int
	cacheKiB    int
	cipher      Cipher
}

// WithLogger sets where the store logs migrations and permission warnings
// (default: nowhere). Keys and secrets are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithBusyTimeout sets how long a statement waits for another process's
// lock (default DefaultBusyTimeout). Writers inside one Store never wait on
// each other this way: they queue for the single write connection.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithReaders sets the size of the read connection pool (default 4).
func WithReaders(n int) Option { return func(c *config) { c.readers = n } }

// WithCacheSize sets the page cache of each connection, in KiB (default
// DefaultCacheSize; values below 1 mean 1, and SQLite keeps at least 10
// pages whatever the setting). A Store has 1 + WithReaders connections,
// and each may hold up to twice kib of memory outside the Go heap (see
// DefaultCacheSize). A larger cache pays off only for a store whose working
// set no longer fits in the OS's file cache.
func WithCacheSize(kib int) Option { return func(c *config) { c.cacheKiB = kib } }

// Store is a store.Store kept in one SQLite file. It is safe for concurrent
// use, also by several processes sharing the file.
type Store struct {
	w   *sql.DB // one connection: every write transaction queues for it
	r   *sql.DB // read-only pool; == w for in-memory stores
	log *slog.Logger
	sec secrets

	closeOnce sync.Once
	closeErr  error

	// hook, when set by tests, runs between the statements of a write
	// transaction; an error from it aborts the transaction, as a crash or a
	// failed statement would.
	hook func(step string) error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store at path and brings its schema up
// to date. The file is created with mode 0600 before SQLite touches it, and
// Open refuses with an *InsecureFileError a file, journal file or directory
// that group or others can write. The path Memory opens a throwaway
// in-memory store.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{busyTimeout: DefaultBusyTimeout, readers: 4, cacheKiB: DefaultCacheSize}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.readers < 1 {
		cfg.readers = 1
	}
	if cfg.busyTimeout < 0 {
		cfg.busyTimeout = 0
	}
	if cfg.cacheKiB < 1 {
		cfg.cacheKiB = 1
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s := &Store{log: cfg.logger, sec: newSecrets(cfg.cipher)}

	if path == Memory {
		// An in-memory database lives and dies with its connection, so the
		// pool holds exactly one and never recycles it; reads and writes
		// share it.
		db, err := sql.Open("sqlite", "file::memory:?"+params(cfg, false, false))
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.w, s.r = db, db
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		if err := prepareFile(abs, cfg.logger); err != nil {
			return nil, err
		}
		// A file: URI, so that any character in the path (even '?') is
		// escaped rather than read as the start of the parameters.
		uri := (&url.URL{Scheme: "file", Path: abs}).String()
		w, err := sql.Open("sqlite", uri+"?"+params(cfg, true, false))
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		r, err := sql.Open("sqlite", uri+"?"+params(cfg, true, true))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		r.SetMaxOpenConns(cfg.readers)
		r.SetMaxIdleConns(cfg.readers)
		s.w, s.r = w, r
	}

	if err := migrate(ctx, s.w, migrations, cfg.logger, 0); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	return s, nil
}

// params builds the driver parameters every connection is opened with.
//
// synchronous=FULL: in WAL mode NORMAL is safe against corruption but a
// power cut can drop the last commits, and the last commit is often the one
// that matters (pairing results: lose it and the phone lists a device that
// can no longer log in). Writes are rare and small, so the extra fsync per
// commit costs nothing noticeable.
//
// cache_size: see DefaultCacheSize (negative: KiB rather than pages).
//
// _txlock=immediate: write transactions take the write lock at BEGIN, so a
// transaction never has to upgrade a read lock mid-way (the upgrade is what
// fails with "database is locked" regardless of busy_timeout).
func params(cfg config, wal, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "cache_size(-"+strconv.Itoa(cfg.cacheKiB)+")")
	// secure_delete zeroes the bytes of deleted or moved rows, so a key
	// that was replaced, deleted or resealed does not linger in free space.
	q.Add("_pragma", "secure_delete(1)")
	if wal && !readOnly {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	}
	q.Set("_txlock", "immediate")
	return q.Encode()
}

// Close closes the store's connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var rerr error
		if s.r != s.w {
			rerr = s.r.Close()
		}
		s.closeErr = errors.Join(rerr, s.w.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// fail wraps err from operation op. When ctx is done the driver may report
// only "interrupted"; the context's error is then wrapped too, so callers
// can test for cancellation with errors.Is.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// write runs fn in one write transaction on the write connection.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, op, err)
	}
	if err := fn(tx); err != nil {
		// Rollback's own error adds nothing: the transaction is void either
		// way, and SQLite discards it if the connection dies.
		_ = tx.Rollback()
		if errors.Is(err, ErrInvalid) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

// step runs the test hook, if any, between statements.
func (s *Store) step(name string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(name)
}
