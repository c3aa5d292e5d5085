package keys_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/walinkdev/walink/keys"
)

// TestNewPreKeysSameAsNewKeyPair checks that NewPreKeys draws its keys
// from rand exactly as one NewKeyPair per key would (stored fixtures and
// tests seeded with a fixed stream depend on it), and that it allocates
// only the returned slice.
func TestNewPreKeysSameAsNewKeyPair(t *testing.T) {
	seed := [32]byte{7}
	pks, err := keys.NewPreKeys(rand.NewChaCha8(seed), keys.MaxPreKeyID-2, 5)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.NewChaCha8(seed)
	for i, id := range []uint32{keys.MaxPreKeyID - 2, keys.MaxPreKeyID - 1, keys.MaxPreKeyID, 1, 2} {
		kp, err := keys.NewKeyPair(r)
		if err != nil {
			t.Fatal(err)
		}
		if pks[i].ID != id || !pks[i].Private.Equal(kp.Private) || !pks[i].Public.Equal(kp.Public) {
			t.Errorf("pre-key %d differs from NewKeyPair's (id %d, want %d)", i, pks[i].ID, id)
		}
	}

	rr := rand.NewChaCha8(seed)
	if allocs := testing.AllocsPerRun(5, func() { _, _ = keys.NewPreKeys(rr, 1, 100) }); allocs > 1 {
		t.Errorf("NewPreKeys(100) made %.0f allocations, want 1", allocs)
	}
}

func TestNewPreKeysShortRead(t *testing.T) {
	r := io.LimitReader(bytes.NewReader(make([]byte, 100)), 70) // two keys and a bit
	if _, err := keys.NewPreKeys(r, 1, 3); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}
