package keys

import (
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// SignatureSize is the length of an XEdDSA signature.
const SignatureSize = 64

// Sign returns the XEdDSA signature of msg by p, as libsignal makes it:
//
//	a = clamped scalar, A = a·B (compressed Edwards point)
//	r = SHA-512(0xFE 0xFF×31 || a || msg || Z) mod L, Z = 64 bytes of rand
//	R = r·B, h = SHA-512(R || A || msg) mod L, s = r + h·a mod L
//	sig = R || s, with A's sign bit stored in the top bit of sig[63]
//
// Signatures are randomized; never compare their bytes.
func (p PrivateKey) Sign(rand io.Reader, msg []byte) ([SignatureSize]byte, error) {
	var sig [SignatureSize]byte
	var z [64]byte
	if _, err := io.ReadFull(rand, z[:]); err != nil {
		return sig, fmt.Errorf("keys: reading randomness: %w", err)
	}
	a, err := edwards25519.NewScalar().SetBytesWithClamping(p.k[:])
	if err != nil {
		return sig, fmt.Errorf("keys: %w", err)
	}
	pubA := new(edwards25519.Point).ScalarBaseMult(a).Bytes()

	h := sha512.New()
	var prefix [32]byte
	prefix[0] = 0xFE
	for i := 1; i < 32; i++ {
		prefix[i] = 0xFF
	}
	h.Write(prefix[:])
	h.Write(p.k[:])
	h.Write(msg)
	h.Write(z[:])
	var digest [64]byte
	r, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()

	h.Reset()
	h.Write(R)
	h.Write(pubA)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	s := edwards25519.NewScalar().MultiplyAdd(k, a, r)

	copy(sig[:32], R)
	copy(sig[32:], s.Bytes())
	sig[63] |= pubA[31] & 0x80
	return sig, nil
}

// Verify reports whether sig is a valid XEdDSA signature of msg by pub.
// It accepts libsignal's form (sign bit in sig[63]) and spec XEdDSA.
func Verify(pub PublicKey, msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	edPub, ok := montgomeryToEdwards(pub, sig[63]&0x80)
	if !ok || smallOrder(edPub) {
		return false
	}
	var s [SignatureSize]byte
	copy(s[:], sig)
	s[63] &= 0x7F
	return ed25519.Verify(edPub, msg, s[:])
}

// smallOrder reports whether the point is of small order (or not a point).
// A low-order key lets a trivial forgery verify (R = identity, s = 0), so
// such keys never verify anything.
func smallOrder(edPub ed25519.PublicKey) bool {
	p, err := new(edwards25519.Point).SetBytes(edPub)
	if err != nil {
		return true
	}
	return new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}

// montgomeryToEdwards maps u to the Edwards y = (u-1)/(u+1) with the given
// sign bit.
func montgomeryToEdwards(pub PublicKey, sign byte) (ed25519.PublicKey, bool) {
	u := pub.k
	u[31] &= 0x7F
	var fu field.Element
	if _, err := fu.SetBytes(u[:]); err != nil {
		return nil, false
	}
	one := new(field.Element).One()
	den := new(field.Element).Add(&fu, one)
	if den.Equal(new(field.Element).Zero()) == 1 {
		return nil, false
	}
	num := new(field.Element).Subtract(&fu, one)
	y := new(field.Element).Multiply(num, new(field.Element).Invert(den))
	out := y.Bytes()
	out[31] |= sign
	return ed25519.PublicKey(out), true
}
