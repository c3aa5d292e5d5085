package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/walinkdev/walink/store/storetest"
)

// TestPutPreKeysAllocations checks that a batch costs a fixed number of
// allocations, not a few per key: per-key garbage of a linking burst
// (8,000 small objects per first login when each key was its own
// statement) left the small size classes' spans pinned by the few
// long-lived objects mixed in with it (bench/NOTES.md, issue 15).
func TestPutPreKeysAllocations(t *testing.T) {
	ctx := t.Context()
	s, _ := tempStore(t)
	d := storetest.NewDevice(t, 60, false)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	pks := storetest.NewPreKeys(t, 60, 1, 812)
	allocs := testing.AllocsPerRun(5, func() {
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 813); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.0f allocations for %d pre-keys", allocs, len(pks))
	if allocs > 100 {
		t.Errorf("PutPreKeys(%d keys) made %.0f allocations, want <= 100", len(pks), allocs)
	}
}

// BenchmarkPutPreKeys stores a first login's 812 pre-keys, replacing the
// same ids each time (the upsert path does the same work as an insert).
func BenchmarkPutPreKeys(b *testing.B) {
	ctx := b.Context()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	d := storetest.NewDevice(b, 61, false)
	if err := s.PutDevice(ctx, d); err != nil {
		b.Fatal(err)
	}
	pks := storetest.NewPreKeys(b, 61, 1, 812)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 813); err != nil {
			b.Fatal(err)
		}
	}
}
