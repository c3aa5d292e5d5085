package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/internal/devrow"
	"github.com/walinkdev/walink/store/storetest"
)

func openFile(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func tempStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "walink.db")
	return openFile(t, path), path
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := tempStore(t)
		return s
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFile(t, Memory) })
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "walink.db")
	want := storetest.NewDevice(t, 1, true)
	pks := storetest.NewPreKeys(t, 1, 1, 30)

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutDevice(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPreKeys(ctx, want.NoiseKey.Public, pks, 31); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openFile(t, path)
	got, err := s.DeviceByJID(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	want.NextPreKeyID = 31
	if diff := storetest.DeviceDiff(want, got); diff != nil {
		t.Errorf("after reopen: %v", diff)
	}
	if n, err := s.PreKeyCount(ctx, want.NoiseKey.Public); err != nil || n != 30 {
		t.Errorf("PreKeyCount after reopen = %d, %v", n, err)
	}
}

func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "w?.db")
	s := openFile(t, path)
	if err := s.PutDevice(t.Context(), storetest.NewDevice(t, 3, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
}

// TestUpgradeFromVersion1 builds a file with only the first migration,
// writes a device the way that schema allowed, and checks Open upgrades it
// in place.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	if err := prepareFile(path, discard()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file://"+path+"?"+params(config{busyTimeout: DefaultBusyTimeout}, true, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, migrations, discard(), 1); err != nil {
		t.Fatal(err)
	}
	d := storetest.NewDevice(t, 4, true)
	r, err := encodeDevice(d, newSecrets(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Version 1 has the columns before unconfirmed (migration 3).
	v1Cols := strings.Split(deviceColumns, ",")
	v1Cols = v1Cols[:slices.IndexFunc(v1Cols, func(c string) bool { return strings.TrimSpace(c) == "unconfirmed" })]
	// Nor the reconnect state of migration 4.
	d.ServerChain, d.WebVersion, d.WebVersionFetchedAt = store.ServerChain{}, "", time.Time{}
	insertV1 := `INSERT INTO devices (` + strings.Join(v1Cols, ",") + `) VALUES (?` + strings.Repeat(", ?", len(v1Cols)-1) + `)`
	if _, err := db.ExecContext(ctx, insertV1, r.Args()[:len(v1Cols)]...); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM lid_map`).Scan(new(int)); err == nil {
		t.Fatal("version 1 already has lid_map; the test no longer tests an upgrade")
	}
	db.Close()

	s := openFile(t, path)
	var v int
	if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version after upgrade = %d, %v; want %d", v, err, len(migrations))
	}
	got, err := s.Device(ctx, d.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("device after upgrade: %v", diff)
	}
	// The new table works: re-put writes the mapping.
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if lid, err := s.LIDForPhone(ctx, d.ID); err != nil || lid != d.LID.ToNonAD() {
		t.Errorf("LIDForPhone after upgrade = %+v, %v", lid, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	s, path := tempStore(t)
	if _, err := s.w.ExecContext(t.Context(), fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(t.Context(), path)
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("err = %v, want *SchemaVersionError", err)
	}
	if sv.Version != len(migrations)+1 || sv.Known != len(migrations) {
		t.Errorf("SchemaVersionError = %+v", sv)
	}
}

func TestLoadMigrationsRejectsBadNumbering(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"gap":        {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"duplicate":  {"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
		"unnumbered": {"migrations/init.sql": {}},
		"zero":       {"migrations/0000_a.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
	ms, err := loadMigrations(fstest.MapFS{"migrations/0002_b.sql": {Data: []byte("B")}, "migrations/0001_a.sql": {Data: []byte("A")}})
	if err != nil || len(ms) != 2 || ms[0].sql != "A" || ms[1].name != "0002_b" {
		t.Errorf("loadMigrations = %+v, %v", ms, err)
	}
}

// TestConcurrentProcesses runs two Stores on one file, as two processes
// would: their writers contend for SQLite's lock, and busy_timeout plus
// BEGIN IMMEDIATE must keep "database is locked" away.
func TestConcurrentProcesses(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := openFile(t, path)
	b := openFile(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			d := storetest.NewDevice(t, uint64(200+w), true)
			pks := storetest.NewPreKeys(t, uint64(w), 1, 50)
			for r := range 10 {
				if err := s.PutDevice(ctx, d); err != nil {
					errs <- err
					return
				}
				if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, uint32(r)); err != nil {
					errs <- err
					return
				}
				if _, err := s.Devices(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range []*Store{a, b} {
		devs, err := s.Devices(ctx)
		if err != nil || len(devs) != 8 {
			t.Errorf("Devices = %d, %v; want 8", len(devs), err)
		}
	}
}

// failAt makes the test hook fail at the named step.
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
	s, _ := tempStore(t)
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
	t.Run("PutPreKeys context cancelled mid-batch", func(t *testing.T) {
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
	// The store is still usable after the failures.
	if err := s.DeleteDevice(ctx, old.NoiseKey.Public); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRowsNameColumnsNotSecrets damages secret columns and checks the
// error says which column without echoing the bytes.
func TestCorruptRowsNameColumnsNotSecrets(t *testing.T) {
	ctx := t.Context()
	s, _ := tempStore(t)
	d := storetest.NewDevice(t, 8, true)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	secret := d.IdentityKey.Private.Bytes()[:31]
	if _, err := s.w.ExecContext(ctx, `UPDATE devices SET identity_priv = ? WHERE noise_pub = ?`, secret, d.NoiseKey.Public.Bytes()); err != nil {
		t.Fatal(err)
	}
	_, err := s.Device(ctx, d.NoiseKey.Public)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "identity_priv") {
		t.Errorf("error does not name the column: %q", msg)
	}
	if strings.Contains(msg, hex.EncodeToString(secret[:8])) || strings.Contains(msg, fmt.Sprint(secret[:4])) {
		t.Errorf("error leaks key bytes: %q", msg)
	}
	if _, err := s.DeviceByJID(ctx, d.ID); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DeviceByJID err = %v", err)
	}
}

func TestInvalidRecords(t *testing.T) {
	s, _ := tempStore(t)
	d := storetest.NewDevice(t, 9, false)
	d.LinkedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.PutDevice(t.Context(), d); !errors.Is(err, ErrInvalid) {
		t.Errorf("time out of range: err = %v, want ErrInvalid", err)
	}
	if err := s.PutDevice(t.Context(), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil device: err = %v, want ErrInvalid", err)
	}
}

func TestDeviceByJIDPrefersNewest(t *testing.T) {
	ctx := t.Context()
	s, _ := tempStore(t)
	stale := storetest.NewDevice(t, 10, true)
	fresh := storetest.NewDevice(t, 11, true)
	fresh.ID, fresh.LID = stale.ID, stale.LID
	for _, d := range []*store.Device{stale, fresh} {
		if err := s.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.DeviceByJID(ctx, stale.ID)
	if err != nil || !got.NoiseKey.Public.Equal(fresh.NoiseKey.Public) {
		t.Errorf("DeviceByJID picked the stale record (%v)", err)
	}
	if lid, err := s.LIDForPhone(ctx, jid.New(stale.ID.User, jid.DefaultUserServer)); err != nil || lid != stale.LID.ToNonAD() {
		t.Errorf("LIDForPhone = %+v, %v", lid, err)
	}
}

func BenchmarkPutDevice(b *testing.B) {
	s, _ := tempStore(b)
	d := storetest.NewDevice(b, 1, true)
	ctx := context.Background()
	for b.Loop() {
		if err := s.PutDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDevice(b *testing.B) {
	s, _ := tempStore(b)
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
	s, _ := tempStore(b)
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

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestMemoryStoreSurvivesInterruptedWrites: an in-memory database lives in
// its one connection, so a cancelled statement must not make the pool
// replace that connection (and silently empty the store).
func TestMemoryStoreSurvivesInterruptedWrites(t *testing.T) {
	ctx := t.Context()
	s := openFile(t, Memory)
	d := storetest.NewDevice(t, 12, true)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		cctx, cancel := context.WithCancel(ctx)
		s.hook = func(string) error { cancel(); return nil }
		err := s.PutPreKeys(cctx, d.NoiseKey.Public, storetest.NewPreKeys(t, 12, 1, 100), 101)
		s.hook = nil
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	}
	// A statement the driver has to interrupt while it runs.
	for range 3 {
		tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err := s.r.QueryRowContext(tctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c`).Scan(new(int64))
		cancel()
		if err == nil {
			t.Fatal("endless query returned")
		}
	}
	if _, err := s.Device(ctx, d.NoiseKey.Public); err != nil {
		t.Fatalf("device gone after interrupted statements: %v", err)
	}
}

// FuzzDecodeRow feeds arbitrary column contents to the row decoder: it
// must never panic, and whatever it accepts must encode and decode to the
// same device.
func FuzzDecodeRow(f *testing.F) {
	d := storetest.NewDevice(f, 1, true)
	r, err := encodeDevice(d, newSecrets(nil))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.NoisePub, r.NoisePriv, r.IdentityPriv, r.SpkSig, r.AdvSecret, r.ServerRoot, r.SpkID, r.ID.Device, r.RegistrationID)
	f.Add([]byte{}, []byte{1}, []byte(nil), []byte{2, 3}, make([]byte, 61), make([]byte, 31), int64(-1), int64(1<<16), int64(1<<32))
	f.Fuzz(func(t *testing.T, noisePub, noisePriv, identityPriv, spkSig, adv, root []byte, spkID, dev, reg int64) {
		x := *r
		x.NoisePub, x.NoisePriv, x.IdentityPriv, x.SpkSig, x.AdvSecret, x.ServerRoot = noisePub, noisePriv, identityPriv, spkSig, adv, root
		x.SpkID, x.ID.Device, x.RegistrationID = spkID, dev, reg
		got, err := decodeRow(&x, newSecrets(nil))
		if err != nil {
			return
		}
		r2, err := encodeDevice(got, newSecrets(nil))
		if err != nil {
			t.Fatalf("decoded device does not encode: %v", err)
		}
		again, err := decodeRow(r2, newSecrets(nil))
		if err != nil {
			t.Fatalf("re-encoded row does not decode: %v", err)
		}
		if diff := storetest.DeviceDiff(got, again); diff != nil {
			t.Fatalf("unstable round trip: %v", diff)
		}
	})
}

// TestCloseLeavesNoGoroutines: the store starts none of its own, and Close
// must stop the driver's and the pools'.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, path := range []string{Memory, filepath.Join(t.TempDir(), "g.db")} {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		d := storetest.NewDevice(t, 1, true)
		if err := s.PutDevice(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Devices(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

// TestUpgradeFromV3Fixture opens testdata/schema-v3.db, written by walink
// before the reconnect state existed (schema version 3: a paired device,
// storetest seed 41, with three pre-keys), and checks that Open migrates
// it, that the device reads back as before with no chain and no version,
// and that the new columns then take a chain and a version.
func TestUpgradeFromV3Fixture(t *testing.T) {
	ctx := t.Context()
	src, err := os.ReadFile(filepath.Join("testdata", "schema-v3.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openFile(t, path)
	var v int
	if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) || v < 4 {
		t.Fatalf("user_version after upgrade = %d, %v; want %d", v, err, len(migrations))
	}
	want := storetest.NewDevice(t, 41, true)
	want.ServerChain, want.WebVersion, want.WebVersionFetchedAt = store.ServerChain{}, "", time.Time{}
	want.NextPreKeyID = 4
	got, err := s.Device(ctx, want.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(want, got); diff != nil {
		t.Fatalf("device after upgrade: %v", diff)
	}
	if n, err := s.PreKeyCount(ctx, want.NoiseKey.Public); err != nil || n != 3 {
		t.Fatalf("pre-keys after upgrade: %d, %v", n, err)
	}
	got.ServerChain = storetest.NewServerChain(t, 41)
	got.WebVersion, got.WebVersionFetchedAt = "2.3000.1045368834", time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if err := s.PutDevice(ctx, got); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again := openFile(t, path)
	back, err := again.Device(ctx, want.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(got, back); diff != nil {
		t.Fatalf("reconnect state after reopen: %v", diff)
	}
}

// TestCorruptServerChain: a damaged server_chain is ErrCorrupt naming the
// column (the client then treats the device as having no chain only if it
// chooses to; the store does not guess).
func TestCorruptServerChain(t *testing.T) {
	ctx := t.Context()
	s, _ := tempStore(t)
	d := storetest.NewDevice(t, 9, true)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"truncated":      devrow.EncodeChain(d.ServerChain)[:50],
		"unknown format": append([]byte{0x7f}, devrow.EncodeChain(d.ServerChain)[1:]...),
		"zero leaf key":  devrow.EncodeChain(store.ServerChain{IntermediateKey: d.ServerChain.IntermediateKey}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.w.ExecContext(ctx, `UPDATE devices SET server_chain = ? WHERE noise_pub = ?`, b, d.NoiseKey.Public.Bytes()); err != nil {
				t.Fatal(err)
			}
			_, err := s.Device(ctx, d.NoiseKey.Public)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "server_chain") {
				t.Fatalf("err = %v, want ErrCorrupt naming server_chain", err)
			}
		})
	}
}
