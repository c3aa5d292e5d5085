package walink

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/walinkdev/walink/pairing"
)

// BenchmarkPairCode measures producing a pair code (code, ephemeral key,
// PBKDF2-wrapped public key): the CPU cost of PairWithCode before the
// network. BenchmarkPBKDF2Baseline is the bare derivation with the same
// parameters, so the two together show the overhead of everything else.
func BenchmarkPairCode(b *testing.B) {
	for b.Loop() {
		if _, _, _, err := prepareCode(rand.Reader, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPBKDF2Baseline(b *testing.B) {
	salt := make([]byte, 32)
	rand.Read(salt)
	for b.Loop() {
		if _, err := pbkdf2.Key(sha256.New, "ABCD1234", salt, pairing.PBKDF2Iterations, 32); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPrepareCode(t *testing.T) {
	code, eph, wrapped, err := prepareCode(rand.Reader, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(wrapped) != pairing.WrappedKeySize {
		t.Fatalf("wrapped %d bytes", len(wrapped))
	}
	pub, err := pairing.UnwrapKey(code, wrapped)
	if err != nil || !pub.Equal(eph.Public) {
		t.Fatalf("unwrap with the code: %v", err)
	}
	if c, _, _, _ := prepareCode(rand.Reader, "WALKL1NK"); c != "WALKL1NK" {
		t.Fatalf("custom code became %q", c)
	}
}
