package noise

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Protocol names. A name of exactly 32 bytes is used as h0 as it is; longer
// names are hashed (Noise spec §5.2).
const (
	// ProtocolXX is the name of the handshake this package runs. The four
	// NULs pad it to 32 bytes.
	ProtocolXX = "Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"
	// ProtocolIK and ProtocolXXFallback name WhatsApp's optional resume
	// handshake and its fallback (CHANGES-2026 §7). The IK name is padded
	// to 32 bytes and used raw; the fallback name is 36 bytes and hashed.
	ProtocolIK         = "Noise_IK_25519_AESGCM_SHA256\x00\x00\x00\x00"
	ProtocolXXFallback = "Noise_XXfallback_25519_AESGCM_SHA256"
)

const (
	hashLen = sha256.Size
	keyLen  = 32
	tagLen  = 16
	// maxNonce is the last usable counter value: WhatsApp's nonce holds a
	// 32-bit counter (the Noise spec has 64 bits). Using it up is an error
	// rather than a wrap, so a nonce is never reused.
	maxNonce = 1<<32 - 1
)

// symmetricState is the Noise SymmetricState with WhatsApp's 32-bit
// nonce. Handshake ciphertexts use h as associated data.
//
// Wire-level: EncryptAndHash(p) = AES-256-GCM(k, 00×8 || BE32(n), ad=h, p),
// then h = SHA-256(h || ciphertext).
type symmetricState struct {
	h     [hashLen]byte
	ck    [hashLen]byte
	aead  cipher.AEAD // nil until the first MixKey
	n     uint64
	nonce [12]byte

	// trace, when set by a test, sees h and ck after every step, and
	// splitTrace the two transport keys.
	trace      func(step string, h, ck []byte)
	splitTrace func(k1, k2 []byte)
}

func (s *symmetricState) init(name string, prologue []byte) {
	if len(name) == hashLen {
		copy(s.h[:], name)
	} else {
		s.h = sha256.Sum256([]byte(name))
	}
	s.ck = s.h
	s.aead = nil
	s.n = 0
	s.mixHash(prologue)
	s.step("init")
}

func (s *symmetricState) step(name string) {
	if s.trace != nil {
		s.trace(name, s.h[:], s.ck[:])
	}
}

func (s *symmetricState) mixHash(data []byte) {
	d := sha256.New()
	d.Write(s.h[:])
	d.Write(data)
	d.Sum(s.h[:0])
}

// mixKey mixes a DH output into the chaining key and installs a fresh
// handshake key with its counter reset to 0.
func (s *symmetricState) mixKey(ikm []byte) error {
	out, err := hkdf.Key(sha256.New, ikm, s.ck[:], "", 2*hashLen)
	if err != nil {
		return fmt.Errorf("noise: hkdf: %w", err)
	}
	copy(s.ck[:], out[:hashLen])
	aead, err := newGCM(out[hashLen:])
	clear(out)
	if err != nil {
		return err
	}
	s.aead = aead
	s.n = 0
	return nil
}

func (s *symmetricState) nextNonce() ([]byte, error) {
	if s.n > maxNonce {
		return nil, ErrNonceExhausted
	}
	binary.BigEndian.PutUint32(s.nonce[8:], uint32(s.n))
	s.n++
	return s.nonce[:], nil
}

// encryptAndHash appends the ciphertext of p to dst. Without a key it
// passes p through (Noise spec), which WhatsApp's XX never needs.
func (s *symmetricState) encryptAndHash(dst, p []byte) ([]byte, error) {
	if s.aead == nil {
		s.mixHash(p)
		return append(dst, p...), nil
	}
	nonce, err := s.nextNonce()
	if err != nil {
		return nil, err
	}
	out := s.aead.Seal(dst, nonce, p, s.h[:])
	s.mixHash(out[len(dst):])
	return out, nil
}

// decryptAndHash returns the plaintext of c; h only changes on success.
func (s *symmetricState) decryptAndHash(c []byte) ([]byte, error) {
	if s.aead == nil {
		s.mixHash(c)
		return append([]byte(nil), c...), nil
	}
	nonce, err := s.nextNonce()
	if err != nil {
		return nil, err
	}
	p, err := s.aead.Open(nil, nonce, c, s.h[:])
	if err != nil {
		return nil, ErrDecrypt
	}
	s.mixHash(c)
	return p, nil
}

// split derives the two transport keys: the first is the initiator's
// sending key, the second the responder's.
func (s *symmetricState) split() (k1, k2 []byte, err error) {
	out, err := hkdf.Key(sha256.New, nil, s.ck[:], "", 2*hashLen)
	if err != nil {
		return nil, nil, fmt.Errorf("noise: hkdf: %w", err)
	}
	if s.splitTrace != nil {
		s.splitTrace(out[:hashLen], out[hashLen:])
	}
	return out[:hashLen], out[hashLen:], nil
}

// destroy forgets the keys; the state is unusable afterwards.
func (s *symmetricState) destroy() {
	clear(s.ck[:])
	clear(s.h[:])
	s.aead = nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != keyLen {
		return nil, fmt.Errorf("noise: cipher key must be %d bytes, got %d", keyLen, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	return g, nil
}
