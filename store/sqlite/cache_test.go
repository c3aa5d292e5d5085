package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

// TestCacheSize: every connection of the store (the writer and the read
// pool, or the one in-memory connection) runs with the configured page
// cache, DefaultCacheSize unless WithCacheSize says otherwise.
func TestCacheSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want int64
	}{
		{"default", nil, -DefaultCacheSize},
		{"64", []Option{WithCacheSize(64)}, -64},
		{"clamped", []Option{WithCacheSize(-5)}, -1},
	} {
		for _, path := range []string{Memory, filepath.Join(t.TempDir(), tc.name+".db")} {
			s, err := Open(t.Context(), path, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, db := range []*sql.DB{s.w, s.r} {
				var got int64
				if err := db.QueryRowContext(t.Context(), `PRAGMA cache_size`).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("%s, %s: cache_size = %d, want %d", tc.name, path, got, tc.want)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// BenchmarkBigStore runs a link's writes (a device, then its 812
// pre-keys) and a login's reads (a device, its pre-key count, one pre-key)
// against a store that already holds 300 devices and their pre-keys
// (thousands of pages, far more than any page cache tried here), for several
// cache sizes: what WithCacheSize costs in speed once the store outgrows
// the cache.
func BenchmarkBigStore(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "big.db")
	pks := storetest.NewPreKeys(b, 1, 1, 812)
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	var devs []keys.PublicKey
	link := func(s *Store, seed uint64) *store.Device {
		d := storetest.NewDevice(b, seed, true)
		if err := s.PutDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 813); err != nil {
			b.Fatal(err)
		}
		return d
	}
	for seed := range uint64(300) {
		devs = append(devs, link(s, seed+1).NoiseKey.Public)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for _, kib := range []int{64, DefaultCacheSize, 512, 2000} {
		s, err := Open(ctx, path, WithCacheSize(kib))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("cache=%d/op=link", kib), func(b *testing.B) {
			seed := uint64(kib) << 32
			for b.Loop() {
				seed++
				link(s, seed)
			}
		})
		b.Run(fmt.Sprintf("cache=%d/op=login", kib), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i = (i + 7) % len(devs)
				if _, err := s.Device(ctx, devs[i]); err != nil {
					b.Fatal(err)
				}
				if n, err := s.PreKeyCount(ctx, devs[i]); err != nil || n != len(pks) {
					b.Fatalf("PreKeyCount = %d, %v", n, err)
				}
				if _, err := s.PreKey(ctx, devs[i], uint32(1+i)); err != nil {
					b.Fatal(err)
				}
			}
		})
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
