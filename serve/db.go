package serve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Dialect names the SQL flavour of the service's database.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

// DB is the service's own connection to the database that also holds the
// library's store. The service keeps its state in tables of its own
// (serve_*), with their own migration bookkeeping (serve_migrations), so
// the store's migrations and these never share numbers.
type DB struct {
	db      *sql.DB
	dialect Dialect
}

// OpenSQLite opens the service tables in the SQLite file at path (the
// same file the sqlite store uses; open the store first so that it
// creates the file with its permission checks). Writes take the lock at
// BEGIN (_txlock=immediate) and wait up to 10 s for the store's writer.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("serve: open: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL: a power cut may drop the last commits, but a commit holds the
	// state change together with the outbox rows that report it, so what
	// survives is always consistent.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs}).String()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("serve: open: %w", err)
	}
	// One connection: SQLite has one writer anyway, and a second pooled
	// connection would only wait on the file lock.
	db.SetMaxOpenConns(1)
	return newDB(ctx, db, SQLite)
}

// OpenPostgres opens the service tables in the PostgreSQL database at dsn.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		// The driver's parse errors can echo the DSN, password included.
		return nil, errors.New("serve: open: cannot parse the connection string")
	}
	db.SetMaxOpenConns(8)
	return newDB(ctx, db, Postgres)
}

func newDB(ctx context.Context, db *sql.DB, d Dialect) (*DB, error) {
	s := &DB{db: db, dialect: d}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connections.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// q rewrites ?-placeholders to $n for PostgreSQL.
func (d *DB) q(query string) string {
	if d.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrations, per dialect, applied in order; serve_migrations records the
// last applied number. Never edit an applied migration: add one.
var migrations = map[Dialect][]string{
	SQLite: {
		`CREATE TABLE serve_sessions (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			webhook_url TEXT NOT NULL DEFAULT '',
			webhook_events TEXT NOT NULL DEFAULT '[]',
			webhook_secret TEXT NOT NULL DEFAULT '',
			device_jid TEXT NOT NULL DEFAULT '',
			status TEXT NOT NULL,
			reason TEXT NOT NULL DEFAULT '',
			transitions TEXT NOT NULL DEFAULT '[]',
			want_running INTEGER NOT NULL DEFAULT 1,
			created_ms INTEGER NOT NULL,
			updated_ms INTEGER NOT NULL
		);
		CREATE TABLE serve_events (
			seq INTEGER PRIMARY KEY AUTOINCREMENT,
			session_id TEXT NOT NULL,
			at_ms INTEGER NOT NULL,
			name TEXT NOT NULL,
			data TEXT NOT NULL
		);
		CREATE INDEX serve_events_session ON serve_events (session_id, seq);
		CREATE TABLE serve_outbox (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			event_seq INTEGER NOT NULL,
			url TEXT NOT NULL,
			secret TEXT NOT NULL,
			body TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_ms INTEGER NOT NULL,
			created_ms INTEGER NOT NULL,
			last_error TEXT NOT NULL DEFAULT ''
		);
		CREATE INDEX serve_outbox_due ON serve_outbox (next_ms);`,
		// The phone's platform, kept by the service (from PairSuccess and
		// Client.Device) rather than read from the store behind a client.
		`ALTER TABLE serve_sessions ADD COLUMN platform TEXT NOT NULL DEFAULT ''`,
	},
	Postgres: {
		`CREATE TABLE serve_sessions (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			webhook_url TEXT NOT NULL DEFAULT '',
			webhook_events TEXT NOT NULL DEFAULT '[]',
			webhook_secret TEXT NOT NULL DEFAULT '',
			device_jid TEXT NOT NULL DEFAULT '',
			status TEXT NOT NULL,
			reason TEXT NOT NULL DEFAULT '',
			transitions TEXT NOT NULL DEFAULT '[]',
			want_running INTEGER NOT NULL DEFAULT 1,
			created_ms BIGINT NOT NULL,
			updated_ms BIGINT NOT NULL
		);
		CREATE TABLE serve_events (
			seq BIGSERIAL PRIMARY KEY,
			session_id TEXT NOT NULL,
			at_ms BIGINT NOT NULL,
			name TEXT NOT NULL,
			data TEXT NOT NULL
		);
		CREATE INDEX serve_events_session ON serve_events (session_id, seq);
		CREATE TABLE serve_outbox (
			id BIGSERIAL PRIMARY KEY,
			event_seq BIGINT NOT NULL,
			url TEXT NOT NULL,
			secret TEXT NOT NULL,
			body TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_ms BIGINT NOT NULL,
			created_ms BIGINT NOT NULL,
			last_error TEXT NOT NULL DEFAULT ''
		);
		CREATE INDEX serve_outbox_due ON serve_outbox (next_ms);`,
		`ALTER TABLE serve_sessions ADD COLUMN platform TEXT NOT NULL DEFAULT ''`,
	},
}

// ErrSchemaTooNew: the tables were written by a newer walink serve.
var ErrSchemaTooNew = errors.New("serve: service tables are from a newer walink")

func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS serve_migrations (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("serve: migrate: %w", err)
	}
	ms := migrations[d.dialect]
	for {
		done, err := d.migrateOne(ctx, ms)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next migration in a transaction with the version
// bump; PostgreSQL serializes concurrent migrators on a table lock.
func (d *DB) migrateOne(ctx context.Context, ms []string) (done bool, err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("serve: migrate: %w", err)
	}
	defer tx.Rollback()
	if d.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `LOCK TABLE serve_migrations IN EXCLUSIVE MODE`); err != nil {
			return false, fmt.Errorf("serve: migrate: %w", err)
		}
	}
	var v sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM serve_migrations`).Scan(&v); err != nil {
		return false, fmt.Errorf("serve: migrate: %w", err)
	}
	cur := int(v.Int64)
	if cur > len(ms) {
		return false, fmt.Errorf("%w: version %d, this binary knows %d", ErrSchemaTooNew, cur, len(ms))
	}
	if cur == len(ms) {
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, ms[cur]); err != nil {
		return false, fmt.Errorf("serve: migration %d: %w", cur+1, err)
	}
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO serve_migrations (version) VALUES (?)`), cur+1); err != nil {
		return false, fmt.Errorf("serve: migration %d: %w", cur+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("serve: migration %d: %w", cur+1, err)
	}
	return false, nil
}
