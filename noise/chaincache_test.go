package noise_test

import (
	"bytes"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink/noise"
)

// TestChainCache: a chain that verified is answered from the cache only
// for the same bytes, root and server key, still expires, and failures are
// never remembered.
func TestChainCache(t *testing.T) {
	v := loadVec(t)
	var c noise.ChainCache

	info, err := c.Parse(v.chain, v.root.Public, v.serverStatic.Public, vecTime)
	if err != nil || !info.LeafKey.Equal(v.serverStatic.Public) {
		t.Fatalf("first parse: %v %v", info, err)
	}
	if c.Hits() != 0 {
		t.Fatalf("hits after a miss = %d", c.Hits())
	}
	info.LeafKey = v.clientStatic.Public // a caller's change must not reach the cache
	again, err := c.Parse(bytes.Clone(v.chain), v.root.Public, v.serverStatic.Public, vecTime)
	if err != nil || c.Hits() != 1 || !again.LeafKey.Equal(v.serverStatic.Public) {
		t.Fatalf("second parse: %+v err=%v hits=%d", again, err, c.Hits())
	}

	// What a full check refuses, the cache refuses too.
	refused := []struct {
		name string
		do   func() error
		want noise.CertReason
	}{
		{"other root", func() error {
			_, err := c.Parse(v.chain, v.intermediate.Public, v.serverStatic.Public, vecTime)
			return err
		}, noise.CertBadRootSignature},
		{"other server key", func() error {
			_, err := c.Parse(v.chain, v.root.Public, v.clientStatic.Public, vecTime)
			return err
		}, noise.CertLeafKeyMismatch},
		{"expired since", func() error {
			_, err := c.Parse(v.chain, v.root.Public, v.serverStatic.Public, time.Unix(1_900_000_001, 0))
			return err
		}, noise.CertExpired},
		{"not yet valid", func() error {
			_, err := c.Parse(v.chain, v.root.Public, v.serverStatic.Public, time.Unix(1_600_000_000, 0))
			return err
		}, noise.CertNotYetValid},
		{"flipped bit", func() error {
			bad := bytes.Clone(v.chain)
			bad[len(bad)-1] ^= 1
			_, err := c.Parse(bad, v.root.Public, v.serverStatic.Public, vecTime)
			return err
		}, noise.CertBadRootSignature},
	}
	for _, r := range refused {
		for range 2 { // the second try must not find a cached failure
			if got := certReason(t, r.do()); got != r.want {
				t.Errorf("%s: reason %v, want %v", r.name, got, r.want)
			}
		}
	}
	if c.Hits() != 5 { // 1 above + "expired since" and "not yet valid" twice each
		t.Errorf("hits = %d, want 5", c.Hits())
	}

	// A nil cache verifies in full.
	var nilCache *noise.ChainCache
	if _, err := nilCache.Parse(v.chain, v.root.Public, v.serverStatic.Public, vecTime); err != nil {
		t.Errorf("nil cache: %v", err)
	}
}

// TestChainCacheBounded: the cache never holds more than Size chains and
// stays correct when it starts over.
func TestChainCacheBounded(t *testing.T) {
	v := loadVec(t)
	c := noise.ChainCache{Size: 2}
	chains := [][]byte{v.chain}
	for i := range 3 {
		chains = append(chains, mintChain(t, v, uint32(10+i)))
	}
	for round := range 3 {
		for i, ch := range chains {
			if _, err := c.Parse(ch, v.root.Public, v.serverStatic.Public, vecTime); err != nil {
				t.Fatalf("round %d chain %d: %v", round, i, err)
			}
		}
	}
	if c.Hits() > 3*uint64(len(chains)) {
		t.Fatalf("hits = %d", c.Hits())
	}
}

// TestChainCacheConcurrent runs for the race detector.
func TestChainCacheConcurrent(t *testing.T) {
	v := loadVec(t)
	var c noise.ChainCache
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := c.Parse(v.chain, v.root.Public, v.serverStatic.Public, vecTime); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Hits() < 8*20-8 {
		t.Errorf("hits = %d, want at least %d", c.Hits(), 8*20-8)
	}
}

// mintChain makes another valid chain for the vector's server key.
func mintChain(t *testing.T, v *vec, serial uint32) []byte {
	t.Helper()
	ch, err := noise.NewCertChain(rand.Reader, v.root.Private, v.intermediate, v.serverStatic.Public, noise.CertOptions{
		IntermediateSerial: serial, LeafSerial: serial + 100,
		NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_900_000_000, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestChainCacheHitAllocs: a hit allocates only the CertInfo it returns
// (the lookup key was built and copied on the heap on every handshake).
func TestChainCacheHitAllocs(t *testing.T) {
	v := loadVec(t)
	var c noise.ChainCache
	if _, err := c.Parse(v.chain, v.root.Public, v.serverStatic.Public, vecTime); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		if _, err := c.Parse(v.chain, v.root.Public, v.serverStatic.Public, vecTime); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Errorf("a hit: %v allocations, want 1", n)
	}
}
