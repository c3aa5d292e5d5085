package keys

import (
	"crypto/subtle"

	"filippo.io/edwards25519/field"
)

// x25519Ladder computes scalar·point on Curve25519 (RFC 7748 §5) with the
// Montgomery ladder, for a clamped scalar. crypto/ecdh would derive the
// public key of a fresh *ecdh.PrivateKey on every call, doubling the cost of
// each DH; a handshake does several, so the ladder is run directly. The field
// arithmetic is the constant-time implementation crypto/ecdh itself is built
// on (51-bit limbs). It is the portable path and the reference the faster
// one (x25519_amd64.go) is tested against.
func x25519Ladder(out, scalar, point *[Size]byte) {
	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	x1.SetBytes(point[:]) // ignores the top bit, accepts non-canonical u
	x2.One()
	x3.Set(&x1)
	z3.One()

	swap := 0
	for pos := 254; pos >= 0; pos-- {
		b := int(scalar[pos/8]>>uint(pos&7)) & 1
		swap ^= b
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = b

		tmp0.Subtract(&x3, &z3)
		tmp1.Subtract(&x2, &z2)
		x2.Add(&x2, &z2)
		z2.Add(&x3, &z3)
		z3.Multiply(&tmp0, &x2)
		z2.Multiply(&z2, &tmp1)
		tmp0.Square(&tmp1)
		tmp1.Square(&x2)
		x3.Add(&z3, &z2)
		z2.Subtract(&z3, &z2)
		x2.Multiply(&tmp1, &tmp0)
		tmp1.Subtract(&tmp1, &tmp0)
		z2.Square(&z2)
		z3.Mult32(&tmp1, 121666)
		x3.Square(&x3)
		tmp0.Add(&tmp0, &z3)
		z3.Multiply(&x1, &z2)
		z2.Multiply(&tmp1, &tmp0)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(out[:], x2.Bytes())
}

// lowOrder lists the canonical u-coordinates of the points of small order
// (0, 1, the two of order 8, and p-1). Every other encoding of them (top bit
// set, or non-canonical u+p) reduces to one of these.
var lowOrder = [5][Size]byte{
	{},
	{1},
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
}

// IsLowOrder reports, in constant time, whether p is a point of small
// order: a DH with it gives a value the peer chose (or zero), and XEdDSA
// signatures under it can be forged. Such keys are refused wherever a peer's
// key is taken.
func (p PublicKey) IsLowOrder() bool {
	var u field.Element
	u.SetBytes(p.k[:])
	c := u.Bytes()
	found := 0
	for i := range lowOrder {
		found |= subtle.ConstantTimeCompare(c, lowOrder[i][:])
	}
	return found == 1
}
