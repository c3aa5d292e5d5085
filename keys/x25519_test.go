package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// edgePoints are u-coordinates where limb-based field code tends to go
// wrong: zero, one, the low-order points, p-1, p, p+1, 2^255-1 (the largest
// non-canonical value), all limbs full or empty, and each with the top bit
// set (which RFC 7748 says to ignore).
func edgePoints(t testing.TB) [][Size]byte {
	var out [][Size]byte
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"0900000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // 2^255-1
		"ffffffffffffffff000000000000000000000000000000000000000000000000",
		"0000000000000000ffffffffffffffff00000000000000000000000000000000",
		"00000000000000000000000000000000ffffffffffffffff0000000000000000",
		"000000000000000000000000000000000000000000000000ffffffffffffff7f",
	} {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		var u [Size]byte
		copy(u[:], b)
		out = append(out, u)
		u[31] |= 0x80
		out = append(out, u)
	}
	return out
}

func clampedScalar(raw []byte) [Size]byte {
	var k [Size]byte
	copy(k[:], raw)
	clamp(&k)
	return k
}

// checkX25519 compares the dispatching x25519 (CIRCL's ladder on amd64 with
// BMI2/ADX) with the portable ladder and with crypto/ecdh, which refuses only
// an all-zero result.
func checkX25519(t *testing.T, scalar, point [Size]byte) {
	t.Helper()
	var got, ref [Size]byte
	x25519(&got, &scalar, &point)
	x25519Ladder(&ref, &scalar, &point)
	if got != ref {
		t.Fatalf("scalar %x point %x: x25519 %x, portable ladder %x", scalar, point, got, ref)
	}
	priv, err := ecdh.X25519().NewPrivateKey(scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ecdh.X25519().NewPublicKey(point[:])
	if err != nil {
		t.Fatal(err)
	}
	want, err := priv.ECDH(pub)
	if err != nil {
		want = make([]byte, Size) // crypto/ecdh's error is the all-zero output
	}
	if !bytes.Equal(got[:], want) {
		t.Fatalf("scalar %x point %x: x25519 %x, crypto/ecdh %x", scalar, point, got, want)
	}
}

func TestX25519PathsAgree(t *testing.T) {
	t.Logf("fast ladder in use: %v", fastLadder)
	scalars := [][Size]byte{
		clampedScalar(bytes.Repeat([]byte{0x00}, Size)),
		clampedScalar(bytes.Repeat([]byte{0xff}, Size)),
	}
	for range 20 {
		raw := make([]byte, Size)
		rand.Read(raw)
		scalars = append(scalars, clampedScalar(raw))
	}
	for _, k := range scalars {
		for _, u := range edgePoints(t) {
			checkX25519(t, k, u)
		}
		for range 20 {
			var u [Size]byte
			rand.Read(u[:])
			checkX25519(t, k, u)
		}
	}
}

// FuzzX25519: for any scalar and any 32-byte u, the fast and portable
// ladders and crypto/ecdh give the same bytes.
func FuzzX25519(f *testing.F) {
	for _, u := range edgePoints(f) {
		f.Add(bytes.Repeat([]byte{0x5a}, Size), u[:])
	}
	f.Fuzz(func(t *testing.T, scalar, point []byte) {
		if len(scalar) != Size || len(point) != Size {
			return
		}
		var u [Size]byte
		copy(u[:], point)
		checkX25519(t, clampedScalar(scalar), u)
	})
}

func BenchmarkX25519Paths(b *testing.B) {
	var k, u, out [Size]byte
	rand.Read(k[:])
	clamp(&k)
	rand.Read(u[:])
	u[31] &= 0x7f
	b.Run("path=dispatch", func(b *testing.B) {
		for b.Loop() {
			x25519(&out, &k, &u)
		}
	})
	b.Run("path=portable", func(b *testing.B) {
		for b.Loop() {
			x25519Ladder(&out, &k, &u)
		}
	})
}
