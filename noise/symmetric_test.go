package noise

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// TestHKDF2: the state's own HKDF is crypto/hkdf's HKDF-SHA256 (salt ck,
// empty info, 64 bytes), for DH outputs and for Split's empty input, and
// MixHash is SHA-256(h || data), with inputs on both sides of sum's stack
// buffer's size.
func TestHKDF2(t *testing.T) {
	var s symmetricState
	sizes := []int{0, 32, 1, 64, 65, 100,
		sumBuf - sha256.BlockSize, sumBuf - sha256.BlockSize + 1, // HMAC's inner hash
		sumBuf - hashLen, sumBuf - hashLen + 1, 3000} // MixHash
	for i := range 220 {
		rand.Read(s.ck[:])
		ikm := make([]byte, sizes[i%len(sizes)])
		rand.Read(ikm)
		want, err := hkdf.Key(sha256.New, ikm, s.ck[:], "", 2*hashLen)
		if err != nil {
			t.Fatal(err)
		}
		s.hkdf2(ikm)
		if !bytes.Equal(s.k1[:], want[:hashLen]) || !bytes.Equal(s.k2[:], want[hashLen:]) {
			t.Fatalf("ikm %x, ck %x: got %x %x, want %x", ikm, s.ck, s.k1, s.k2, want)
		}
		h := s.h
		s.mixHash(ikm)
		if want := sha256.Sum256(append(h[:], ikm...)); s.h != want {
			t.Fatalf("mixHash: %x, want %x", s.h, want)
		}
	}
}

// TestSymmetricStateAllocs: MixHash allocates nothing, MixKey only its
// AEAD, Split nothing (a SHA-256 state per call was most of a handshake's
// allocations).
func TestSymmetricStateAllocs(t *testing.T) {
	var s symmetricState
	s.init(ProtocolXX, HeaderV3[:])
	data := make([]byte, 300)
	ikm := make([]byte, 32)
	if n := testing.AllocsPerRun(100, func() { s.mixHash(data) }); n != 0 {
		t.Errorf("mixHash: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { s.split() }); n != 0 {
		t.Errorf("split: %v allocations", n)
	}
	base := testing.AllocsPerRun(100, func() { newGCM(ikm) })
	if n := testing.AllocsPerRun(100, func() { s.mixKey(ikm) }); n > base {
		t.Errorf("mixKey: %v allocations, the AEAD alone %v", n, base)
	}
}
