package lease

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Table names, in the first schema of the connection's search_path (the
// one the store and the service use).
const (
	LeaseTable    = "serve_leases"
	ReplicaTable  = "serve_replicas"
	WriteLogTable = "serve_write_log"
)

// migrations of the lease tables, applied in order and recorded in
// serve_lease_migrations. Never edit an applied one: add one.
var migrations = []string{
	`CREATE TABLE serve_leases (
		session_id  TEXT PRIMARY KEY,
		owner       TEXT NOT NULL DEFAULT '',           -- replica id; '' = free
		epoch       BIGINT NOT NULL DEFAULT 0,           -- +1 at every acquisition
		expires_at  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
		acquired_at TIMESTAMPTZ
	);
	CREATE INDEX serve_leases_owner ON serve_leases (owner);
	CREATE TABLE serve_replicas (
		id            TEXT PRIMARY KEY,
		advertise_url TEXT NOT NULL DEFAULT '',
		draining      BOOLEAN NOT NULL DEFAULT false,
		started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
		expires_at    TIMESTAMPTZ NOT NULL
	);
	CREATE TABLE serve_write_log (
		id         BIGSERIAL PRIMARY KEY,
		session_id TEXT NOT NULL,
		owner      TEXT NOT NULL,
		epoch      BIGINT NOT NULL,
		what       TEXT NOT NULL,
		at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
	);
	CREATE INDEX serve_write_log_session ON serve_write_log (session_id, id);`,
}

// migrate brings the lease tables up to date in one transaction under a
// transaction-scoped advisory lock (released at commit, so it is safe
// behind a transaction-pooling proxy), keyed by the schema.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("lease: migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('walink serve_leases ' || coalesce(current_schema(), '')))`); err != nil {
		return fmt.Errorf("lease: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS serve_lease_migrations (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("lease: migrate: %w", err)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM serve_lease_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("lease: migrate: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("%w: version %d, this binary knows %d", ErrSchemaTooNew, have, len(migrations))
	}
	for v := have; v < len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("lease: migration %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO serve_lease_migrations (version) VALUES ($1)`, v+1); err != nil {
			return fmt.Errorf("lease: migration %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("lease: migrate: %w", err)
	}
	return nil
}
