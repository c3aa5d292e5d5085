package keys

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

// Size is the length of every key in bytes.
const Size = 32

// DJBType is the key-type byte libsignal prefixes to a serialized Curve25519
// public key. It is signed over (signed pre-keys) but never sent in WhatsApp's
// 32-byte key fields.
const DJBType = 0x05

// Errors returned by this package.
var (
	// ErrKeySize reports key material of the wrong length.
	ErrKeySize = errors.New("keys: key must be 32 bytes")
	// ErrLowOrder reports a Diffie-Hellman result of all zeros: the peer's
	// public key is a low-order point.
	ErrLowOrder = errors.New("keys: low-order public key")
)

// PrivateKey is an X25519 private scalar, stored clamped.
//
// The zero value is not a usable key.
type PrivateKey struct{ k [Size]byte }

// PublicKey is an X25519 (Montgomery u-coordinate) public key.
type PublicKey struct{ k [Size]byte }

// KeyPair is a private key together with its public key.
type KeyPair struct {
	Private PrivateKey
	Public  PublicKey
}

func clamp(k *[Size]byte) {
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
}

// NewPrivateKey returns a private key made from 32 bytes of rand.
func NewPrivateKey(rand io.Reader) (PrivateKey, error) {
	var p PrivateKey
	if _, err := io.ReadFull(rand, p.k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("keys: reading randomness: %w", err)
	}
	clamp(&p.k)
	return p, nil
}

// NewKeyPair returns a fresh key pair drawn from rand.
func NewKeyPair(rand io.Reader) (KeyPair, error) {
	p, err := NewPrivateKey(rand)
	if err != nil {
		return KeyPair{}, err
	}
	return p.KeyPair(), nil
}

// PrivateKeyFromBytes returns the private key held in b (32 bytes). The
// scalar is clamped, as X25519 would clamp it anyway.
func PrivateKeyFromBytes(b []byte) (PrivateKey, error) {
	var p PrivateKey
	if len(b) != Size {
		return PrivateKey{}, fmt.Errorf("%w, got %d", ErrKeySize, len(b))
	}
	copy(p.k[:], b)
	clamp(&p.k)
	return p, nil
}

// PublicKeyFromBytes returns the public key held in b (32 bytes, no 0x05
// type prefix).
func PublicKeyFromBytes(b []byte) (PublicKey, error) {
	var p PublicKey
	if len(b) != Size {
		return PublicKey{}, fmt.Errorf("%w, got %d", ErrKeySize, len(b))
	}
	copy(p.k[:], b)
	return p, nil
}

// MustPublicKey is PublicKeyFromBytes for compile-time constants; it panics
// on a bad length, so use it only with literals.
func MustPublicKey(hexKey string) PublicKey {
	b, err := hex.DecodeString(hexKey)
	if err != nil {
		panic("keys: MustPublicKey: " + err.Error())
	}
	p, err := PublicKeyFromBytes(b)
	if err != nil {
		panic("keys: MustPublicKey: " + err.Error())
	}
	return p
}

// KeyPairFromPrivate returns the key pair for a private key given as bytes.
func KeyPairFromPrivate(b []byte) (KeyPair, error) {
	p, err := PrivateKeyFromBytes(b)
	if err != nil {
		return KeyPair{}, err
	}
	return p.KeyPair(), nil
}

// Public returns the public key of p.
//
// X25519(p, 9) is computed as p·B on the birationally equivalent Edwards
// curve, whose fixed-base multiplication uses precomputed tables and is
// about twice as fast as the Montgomery ladder; its u-coordinate is the
// same point (both base points generate the prime-order subgroup, where the
// clamped scalar acts modulo the group order).
func (p PrivateKey) Public() PublicKey {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(p.k[:])
	if err != nil {
		// Only a wrong length fails, and the array is always 32 bytes.
		panic("keys: " + err.Error())
	}
	var pub PublicKey
	copy(pub.k[:], new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
	return pub
}

// KeyPair returns p with its public key.
func (p PrivateKey) KeyPair() KeyPair { return KeyPair{Private: p, Public: p.Public()} }

// IsZero reports whether p is the zero value (not a key).
func (p PrivateKey) IsZero() bool { return p.k == [Size]byte{} }

// Bytes returns a copy of the clamped scalar. Handle with care: this is the
// secret.
func (p PrivateKey) Bytes() []byte { b := p.k; return b[:] }

// Array returns the clamped scalar as an array. Handle with care.
func (p PrivateKey) Array() [Size]byte { return p.k }

// Equal reports whether p and q are the same key, in constant time.
func (p PrivateKey) Equal(q PrivateKey) bool { return subtle.ConstantTimeCompare(p.k[:], q.k[:]) == 1 }

// ECDH returns X25519(p, peer). It fails with ErrLowOrder when the result is
// all zeros (the peer's key is a point of small order).
func (p PrivateKey) ECDH(peer PublicKey) ([]byte, error) {
	var out [Size]byte
	x25519(&out, &p.k, &peer.k)
	if subtle.ConstantTimeCompare(out[:], make([]byte, Size)) == 1 {
		return nil, ErrLowOrder
	}
	return out[:], nil
}

// String never reveals the key.
func (p PrivateKey) String() string { return "keys.PrivateKey(redacted)" }

// GoString never reveals the key.
func (p PrivateKey) GoString() string { return p.String() }

// Format makes every fmt verb print the redacted form.
func (p PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, p.String()) }

// Bytes returns a copy of the 32-byte public key.
func (p PublicKey) Bytes() []byte { b := p.k; return b[:] }

// Array returns the key as an array.
func (p PublicKey) Array() [Size]byte { return p.k }

// Serialized returns 0x05 || key, the form signed pre-keys are signed over.
func (p PublicKey) Serialized() []byte {
	b := make([]byte, 1+Size)
	b[0] = DJBType
	copy(b[1:], p.k[:])
	return b
}

// IsZero reports whether p is the zero value.
func (p PublicKey) IsZero() bool { return p.k == [Size]byte{} }

// Equal reports whether p and q are the same key, in constant time.
func (p PublicKey) Equal(q PublicKey) bool { return subtle.ConstantTimeCompare(p.k[:], q.k[:]) == 1 }

// String returns the key in lowercase hex.
func (p PublicKey) String() string { return hex.EncodeToString(p.k[:]) }

// String never reveals the private half.
func (kp KeyPair) String() string { return "keys.KeyPair{public:" + kp.Public.String() + "}" }
