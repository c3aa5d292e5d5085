package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

// DSNEnv names the environment variable the tests read the database from;
// they skip when it is unset.
const DSNEnv = "WALINK_TEST_POSTGRES_DSN"

func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Skipf("%s is not set; PostgreSQL tests skipped", DSNEnv)
	}
	return dsn
}

// testSchema creates a schema of its own for one test, dropped at cleanup,
// and returns the DSN that selects it, so parallel packages and reruns
// never see each other's tables.
func testSchema(t testing.TB) string {
	t.Helper()
	dsn := testDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", DSNEnv, err)
	}
	defer conn.Close(ctx)
	var b [8]byte
	rand.Read(b[:])
	schema := "walink_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema: %v", err)
		}
	})
	return withSearchPath(t, dsn, schema)
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s: %v", DSNEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

func openTest(t testing.TB) *Store {
	t.Helper()
	return openDSN(t, testSchema(t))
}

func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

func TestReopenAndConcurrentOpen(t *testing.T) {
	ctx := t.Context()
	dsn := testSchema(t)
	// Several processes starting together on an empty schema: each
	// migration must run once, and nobody may fail on CREATE TABLE.
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var n int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM walink_schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
		t.Errorf("walink_schema_migrations has %d rows, %v; want %d", n, err, len(migrations))
	}

	d := storetest.NewDevice(t, 1, true)
	if err := stores[1].PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		s.Close()
	}
	s := openDSN(t, dsn)
	got, err := s.DeviceByJID(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("after reopen: %v", diff)
	}
}

func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	dsn := testSchema(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool, migrations, slog.New(slog.DiscardHandler), 1); err != nil {
		t.Fatal(err)
	}
	d := storetest.NewDevice(t, 2, true)
	r, err := encodeDevice(d, newSecrets(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Version 1 has the columns before unconfirmed (migration 3).
	v1Cols := strings.Split(deviceColumns, ",")
	v1Cols = v1Cols[:slices.IndexFunc(v1Cols, func(c string) bool { return strings.TrimSpace(c) == "unconfirmed" })]
	// Nor the reconnect state of migration 4.
	d.ServerChain, d.WebVersion, d.WebVersionFetchedAt = store.ServerChain{}, "", time.Time{}
	var ph []string
	for i := range v1Cols {
		ph = append(ph, fmt.Sprintf("$%d", i+1))
	}
	insertV1 := `INSERT INTO walink_devices (` + strings.Join(v1Cols, ",") + `) VALUES (` + strings.Join(ph, ", ") + `)`
	if _, err := pool.Exec(ctx, insertV1, r.Args()[:len(v1Cols)]...); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT 1 FROM walink_lid_map`); err == nil {
		t.Fatal("version 1 already has walink_lid_map; the test no longer tests an upgrade")
	}

	s, err := OpenPool(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Device(ctx, d.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("device after upgrade: %v", diff)
	}
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if lid, err := s.LIDForPhone(ctx, d.ID); err != nil || lid != d.LID.ToNonAD() {
		t.Errorf("LIDForPhone after upgrade = %+v, %v", lid, err)
	}
	s.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("Close closed a pool the caller owns: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := testSchema(t)
	s := openDSN(t, dsn)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO walink_schema_migrations (version, name) VALUES ($1, 'future')`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn)
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("err = %v, want *SchemaVersionError", err)
	}
	if sv.Version != len(migrations)+1 || sv.Known != len(migrations) {
		t.Errorf("SchemaVersionError = %+v", sv)
	}
}

func TestOpenHidesBadDSN(t *testing.T) {
	_, err := Open(t.Context(), "postgres://user:hunter2@[bad")
	if err == nil {
		t.Fatal("Open accepted a malformed DSN")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %q", err)
	}
}

func TestLoadMigrationsRejectsBadNumbering(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"gap":        {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"duplicate":  {"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
		"unnumbered": {"migrations/init.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
}

func failAt(s *Store, step string, err error) {
	s.hook = func(name string) error {
		if name == step {
			return err
		}
		return nil
	}
}

// TestAtomicWrites aborts write transactions between their statements and
// checks that nothing of them remains.
func TestAtomicWrites(t *testing.T) {
	ctx := t.Context()
	boom := errors.New("injected failure")
	s := openTest(t)
	old := storetest.NewDevice(t, 5, true)
	if err := s.PutDevice(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPreKeys(ctx, old.NoiseKey.Public, storetest.NewPreKeys(t, 5, 1, 10), 11); err != nil {
		t.Fatal(err)
	}
	old.NextPreKeyID = 11
	check := func(t *testing.T) {
		t.Helper()
		got, err := s.Device(ctx, old.NoiseKey.Public)
		if err != nil {
			t.Fatal(err)
		}
		if diff := storetest.DeviceDiff(old, got); diff != nil {
			t.Errorf("device changed by a failed write: %v", diff)
		}
		if lid, err := s.LIDForPhone(ctx, old.ID); err != nil || lid != old.LID.ToNonAD() {
			t.Errorf("mapping changed by a failed write: %+v, %v", lid, err)
		}
		if n, err := s.PreKeyCount(ctx, old.NoiseKey.Public); err != nil || n != 10 {
			t.Errorf("PreKeyCount after a failed write = %d, %v", n, err)
		}
	}
	t.Run("PutDevice fails after the device row", func(t *testing.T) {
		re := storetest.NewDevice(t, 6, true)
		re.NoiseKey = old.NoiseKey
		for _, step := range []string{"device", "lid_map delete"} {
			failAt(s, step, boom)
			if err := s.PutDevice(ctx, re); !errors.Is(err, boom) {
				t.Errorf("step %s: err = %v", step, err)
			}
			s.hook = nil
			check(t)
		}
	})
	t.Run("PutPreKeys context cancelled after NextPreKeyID", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s.hook = func(string) error { cancel(); return nil }
		err := s.PutPreKeys(cctx, old.NoiseKey.Public, storetest.NewPreKeys(t, 7, 100, 50), 150)
		s.hook = nil
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		check(t)
	})
	t.Run("DeleteDevice fails after pre-keys", func(t *testing.T) {
		failAt(s, "delete 0", boom)
		if err := s.DeleteDevice(ctx, old.NoiseKey.Public); !errors.Is(err, boom) {
			t.Errorf("err = %v", err)
		}
		s.hook = nil
		check(t)
	})
	if err := s.DeleteDevice(ctx, old.NoiseKey.Public); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRowsNameColumnsNotSecrets(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	d := storetest.NewDevice(t, 8, true)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	secret := d.NoiseKey.Private.Bytes()[:20]
	if _, err := s.pool.Exec(ctx, `UPDATE walink_devices SET noise_priv = $1 WHERE noise_pub = $2`, secret, d.NoiseKey.Public.Bytes()); err != nil {
		t.Fatal(err)
	}
	_, err := s.Device(ctx, d.NoiseKey.Public)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "noise_priv") || strings.Contains(msg, hex.EncodeToString(secret[:8])) || strings.Contains(msg, fmt.Sprint(secret[:4])) {
		t.Errorf("error should name the column and not the bytes: %q", msg)
	}
}

// TestPreKeysRepeatedIDs: a batch naming one id twice keeps the later key
// (a single INSERT … ON CONFLICT would otherwise fail on it).
func TestPreKeysRepeatedIDs(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	d := storetest.NewDevice(t, 9, false)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	a := storetest.NewPreKeys(t, 1, 5, 1)
	b := storetest.NewPreKeys(t, 2, 5, 1)
	if err := s.PutPreKeys(ctx, d.NoiseKey.Public, append(a, b...), 6); err != nil {
		t.Fatal(err)
	}
	got, err := s.PreKey(ctx, d.NoiseKey.Public, 5)
	if err != nil || !got.Private.Equal(b[0].Private) {
		t.Errorf("PreKey(5) is not the later key (%v)", err)
	}
}

func benchStore(b *testing.B) *Store { return openTest(b) }

func BenchmarkPutDevice(b *testing.B) {
	s := benchStore(b)
	d := storetest.NewDevice(b, 1, true)
	ctx := context.Background()
	for b.Loop() {
		if err := s.PutDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDevice(b *testing.B) {
	s := benchStore(b)
	d := storetest.NewDevice(b, 1, true)
	ctx := context.Background()
	if err := s.PutDevice(ctx, d); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Device(ctx, d.NoiseKey.Public); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutPreKeys812(b *testing.B) {
	s := benchStore(b)
	d := storetest.NewDevice(b, 1, false)
	ctx := context.Background()
	if err := s.PutDevice(ctx, d); err != nil {
		b.Fatal(err)
	}
	pks := storetest.NewPreKeys(b, 1, 1, 812)
	for b.Loop() {
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 813); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCloseLeavesNoGoroutines: Close must stop the pool's background
// goroutines.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	dsn := testSchema(t)
	before := runtime.NumGoroutine()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutDevice(t.Context(), storetest.NewDevice(t, 1, true)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}
