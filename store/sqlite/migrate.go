package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the parsed list, checked once at init: a gap or duplicate
// in the numbering is a build mistake, not a runtime condition.
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
			return nil, fmt.Errorf("sqlite: migration %s: name must start with a positive number and '_'", base)
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
			return nil, fmt.Errorf("sqlite: migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings the schema, versioned by PRAGMA user_version, up to target
// (0: the newest). Each step runs in its own immediate transaction together
// with its version bump, so a crash leaves the schema at a whole step, and
// two processes opening one new file apply each step once: the second waits
// for the write lock, then sees the new version.
func migrate(ctx context.Context, db *sql.DB, ms []migration, log *slog.Logger, target int) error {
	if target == 0 {
		target = len(ms)
	}
	var have int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return fail(ctx, "read schema version", err)
	}
	if have > len(ms) {
		return &SchemaVersionError{Version: have, Known: len(ms)}
	}
	for _, m := range ms[have:target] {
		if err := applyMigration(ctx, db, m, log); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration, log *slog.Logger) error {
	op := "migrate to " + m.name
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, op, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var have int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return fail(ctx, op, err)
	}
	if have >= m.version {
		return nil // another process got there first
	}
	if have != m.version-1 {
		return fmt.Errorf("sqlite: %s: schema is at version %d", op, have)
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fail(ctx, op, err)
	}
	// PRAGMA takes no bound parameters; the version is an int from our own
	// file names.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.version)); err != nil {
		return fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(ctx, op, err)
	}
	log.Info("sqlite: applied migration", "migration", m.name)
	return nil
}
