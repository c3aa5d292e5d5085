package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPreKeyID is the largest pre-key id: ids travel as 3 bytes.
const MaxPreKeyID = 1<<24 - 1

// PreKey is a one-time pre-key with its 24-bit id.
type PreKey struct {
	ID uint32
	KeyPair
}

// SignedPreKey is a pre-key signed by the identity key over 0x05 || public.
type SignedPreKey struct {
	PreKey
	Signature [SignatureSize]byte
}

// NewSignedPreKey makes a signed pre-key with the given id, signed by
// identity.
func NewSignedPreKey(rand io.Reader, identity PrivateKey, id uint32) (SignedPreKey, error) {
	if id == 0 || id > MaxPreKeyID {
		return SignedPreKey{}, fmt.Errorf("keys: signed pre-key id %d out of range", id)
	}
	kp, err := NewKeyPair(rand)
	if err != nil {
		return SignedPreKey{}, err
	}
	sig, err := identity.Sign(rand, kp.Public.Serialized())
	if err != nil {
		return SignedPreKey{}, err
	}
	return SignedPreKey{PreKey: PreKey{ID: id, KeyPair: kp}, Signature: sig}, nil
}

// Verify reports whether spk is signed by identity.
func (spk SignedPreKey) Verify(identity PublicKey) bool {
	return Verify(identity, spk.Public.Serialized(), spk.Signature[:])
}

// NewPreKeys makes n pre-keys with ids first, first+1, …, wrapping from
// MaxPreKeyID back to 1 (id 0 is never used).
func NewPreKeys(rand io.Reader, first uint32, n int) ([]PreKey, error) {
	if n < 0 {
		return nil, errors.New("keys: negative pre-key count")
	}
	if first == 0 || first > MaxPreKeyID {
		first = 1
	}
	out := make([]PreKey, n)
	// The scalars are read into the output's own private-key fields, as
	// NewPrivateKey would read them one by one (the same bytes of rand, in
	// the same order), but without its 32-byte heap copy per key (its
	// array escapes to the io.Reader): 812 of them at each first login.
	id := first
	for i := range out {
		if _, err := io.ReadFull(rand, out[i].Private.k[:]); err != nil {
			return nil, fmt.Errorf("keys: reading randomness: %w", err)
		}
		clamp(&out[i].Private.k)
		out[i] = PreKey{ID: id, KeyPair: out[i].Private.KeyPair()}
		id++
		if id > MaxPreKeyID {
			id = 1
		}
	}
	return out, nil
}

// PreKeyIDBytes returns id as the 3 big-endian bytes used on the wire.
func PreKeyIDBytes(id uint32) []byte {
	return []byte{byte(id >> 16), byte(id >> 8), byte(id)}
}

// NewRegistrationID returns a random registration id in 1..2^31-1, the
// range every client accepts.
func NewRegistrationID(rand io.Reader) (uint32, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, fmt.Errorf("keys: reading randomness: %w", err)
		}
		if id := binary.BigEndian.Uint32(b[:]) & 0x7FFFFFFF; id != 0 {
			return id, nil
		}
	}
}
