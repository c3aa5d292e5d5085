package noise

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/walinkdev/walink/keys"
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

	// The handshake's hashing uses sha256.Sum256 on a stack buffer (see
	// sum) and these arrays (HMAC pads, HKDF's temporary key and
	// outputs), so that MixHash and MixKey allocate nothing beyond the
	// AEAD: crypto/hkdf builds two HMACs (four SHA-256 states, their
	// marshalled pads) per call, 18 allocations and ~1 KiB per MixKey and
	// Split.
	hash   hash.Hash // for inputs longer than sumBuf, made on first need
	pad    [sha256.BlockSize]byte
	tk     [hashLen]byte // HKDF's pseudorandom key
	k1, k2 [hashLen]byte // HKDF's outputs

	// key holds a public key while it is hashed, sealed or opened: a
	// key's bytes passed through the hash.Hash or cipher.AEAD interface
	// escape, so a copy on the stack would allocate each time.
	key [keys.Size]byte

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

// sumBuf is the most sum hashes in one piece from a stack buffer, which
// covers every input of a handshake short of a large certificate chain or
// payload: sha256.Sum256 of a stack buffer allocates nothing, where a
// hash.Hash is a heap allocation per state.
const sumBuf = 1024

// sum sets out to SHA-256(a || b || c); out may be one of the inputs.
func (s *symmetricState) sum(out *[hashLen]byte, a, b, c []byte) {
	if n := len(a) + len(b) + len(c); n <= sumBuf {
		var buf [sumBuf]byte
		m := copy(buf[:], a)
		m += copy(buf[m:], b)
		m += copy(buf[m:], c)
		*out = sha256.Sum256(buf[:m])
		clear(buf[:m]) // it may hold an HMAC key pad
		return
	}
	d := s.digest()
	d.Write(a)
	d.Write(b)
	d.Write(c)
	d.Sum(out[:0])
}

// digest returns the state's SHA-256, reset, for inputs too long for sum's
// buffer.
func (s *symmetricState) digest() hash.Hash {
	if s.hash == nil {
		s.hash = sha256.New()
	} else {
		s.hash.Reset()
	}
	return s.hash
}

func (s *symmetricState) mixHash(data []byte) {
	s.sum(&s.h, s.h[:], data, nil)
}

// mixHashKey is mixHash(k.Bytes()) without allocating.
func (s *symmetricState) mixHashKey(k keys.PublicKey) {
	s.key = k.Array()
	s.mixHash(s.key[:])
}

// hmac sets out to HMAC-SHA256(key, m1 || m2) (RFC 2104; a 32-byte key is
// zero-padded to the block). out may be one of the state's arrays that m2
// is not.
func (s *symmetricState) hmac(out, key *[hashLen]byte, m1, m2 []byte) {
	s.keyPad(key, 0x36)
	s.sum(out, s.pad[:], m1, m2)
	s.keyPad(key, 0x5c)
	s.sum(out, s.pad[:], out[:], nil)
	clear(s.pad[:])
}

func (s *symmetricState) keyPad(key *[hashLen]byte, pad byte) {
	for i := range s.pad {
		s.pad[i] = pad
	}
	for i, b := range key {
		s.pad[i] ^= b
	}
}

// hkdf2 is the Noise spec's HKDF(ck, ikm) with two outputs, which is RFC
// 5869's HKDF-SHA256 with salt ck, empty info and 64 bytes of output: it
// sets k1 and k2.
func (s *symmetricState) hkdf2(ikm []byte) {
	s.hmac(&s.tk, &s.ck, ikm, nil)
	s.hmac(&s.k1, &s.tk, byte1, nil)
	s.hmac(&s.k2, &s.tk, s.k1[:], byte2)
	clear(s.tk[:])
}

var byte1, byte2 = []byte{1}, []byte{2}

// mixKey mixes a DH output into the chaining key and installs a fresh
// handshake key with its counter reset to 0.
func (s *symmetricState) mixKey(ikm []byte) error {
	s.hkdf2(ikm)
	s.ck = s.k1
	aead, err := newGCM(s.k2[:])
	clear(s.k1[:])
	clear(s.k2[:])
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

// encryptKeyAndHash is encryptAndHash(dst, k.Bytes()) without allocating.
func (s *symmetricState) encryptKeyAndHash(dst []byte, k keys.PublicKey) ([]byte, error) {
	s.key = k.Array()
	return s.encryptAndHash(dst, s.key[:])
}

// decryptAndHash appends the plaintext of c to dst, which must not
// overlap c; h only changes on success.
func (s *symmetricState) decryptAndHash(dst, c []byte) ([]byte, error) {
	if s.aead == nil {
		s.mixHash(c)
		return append(dst, c...), nil
	}
	nonce, err := s.nextNonce()
	if err != nil {
		return nil, err
	}
	p, err := s.aead.Open(dst, nonce, c, s.h[:])
	if err != nil {
		return nil, ErrDecrypt
	}
	s.mixHash(c)
	return p, nil
}

// decryptKeyAndHash decrypts an encrypted public key (staticCTLen bytes)
// without allocating.
func (s *symmetricState) decryptKeyAndHash(c []byte) (keys.PublicKey, error) {
	p, err := s.decryptAndHash(s.key[:0], c)
	if err != nil {
		return keys.PublicKey{}, err
	}
	return keys.PublicKeyFromBytes(p)
}

// split derives the two transport keys: the first is the initiator's
// sending key, the second the responder's. They are the state's own
// arrays: the caller clears them (destroy does too).
func (s *symmetricState) split() (k1, k2 []byte, err error) {
	s.hkdf2(nil)
	if s.splitTrace != nil {
		s.splitTrace(s.k1[:], s.k2[:])
	}
	return s.k1[:], s.k2[:], nil
}

// destroy forgets the keys; the state is unusable afterwards.
func (s *symmetricState) destroy() {
	clear(s.ck[:])
	clear(s.h[:])
	clear(s.k1[:])
	clear(s.k2[:])
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
