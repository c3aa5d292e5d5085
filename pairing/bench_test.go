package pairing

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/walinkdev/walink/keys"
)

// BenchmarkCodeProduction is what a companion does per code: a new code and
// one wrapped key. Compare with BenchmarkPBKDF2Raw from the same run: the
// difference is our overhead around the 131072-iteration KDF.
func BenchmarkCodeProduction(b *testing.B) {
	eph, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		code, err := NewCode(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WrapKey(rand.Reader, code, eph.Public); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPBKDF2Raw is the bare stdlib KDF with the same parameters.
func BenchmarkPBKDF2Raw(b *testing.B) {
	salt := make([]byte, WrapSaltSize)
	rand.Read(salt)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pbkdf2.Key(sha256.New, "12345678", salt, PBKDF2Iterations, 32); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPairSuccess covers the HMAC, both parses, the account
// signature check and making the device signature.
func BenchmarkVerifyPairSuccess(b *testing.B) {
	account, _ := keys.NewKeyPair(rand.Reader)
	companion, _ := keys.NewKeyPair(rand.Reader)
	var adv [32]byte
	rand.Read(adv[:])
	c, err := SignDeviceIdentity(rand.Reader, account, companion.Public, adv, DeviceIdentity{RawID: 1, Timestamp: 1700000000, KeyIndex: 3})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyPairSuccess(rand.Reader, adv, companion, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompanionFinish is stage 2 on the companion: two X25519, HKDF x2, GCM.
func BenchmarkCompanionFinish(b *testing.B) {
	ce, _ := keys.NewKeyPair(rand.Reader)
	ci, _ := keys.NewKeyPair(rand.Reader)
	pe, _ := keys.NewKeyPair(rand.Reader)
	pi, _ := keys.NewKeyPair(rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := CompanionFinish(rand.Reader, ce.Private, ci, pe.Public, pi.Public); err != nil {
			b.Fatal(err)
		}
	}
}
