package pairing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/walinkdev/walink/keys"
)

// Pair code constants (PROTOCOL.md §14, §23.1).
const (
	// CodeAlphabet is WhatsApp's 32-symbol alphabet (not Crockford's: it has
	// L and lacks 0, I, O, U).
	CodeAlphabet = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
	// CodeLength is the number of symbols in a code (5 random bytes).
	CodeLength = 8
	// PBKDF2Iterations is 2<<16 = 2^17, as all clients write it.
	PBKDF2Iterations = 131072
	// WrappedKeySize is salt(32) || iv(16) || AES-CTR(pub)(32).
	WrappedKeySize = 80
	// KeyBundleSize is salt(32) || nonce(12) || AES-GCM(96-byte plaintext)(112).
	KeyBundleSize = 156
)

// Sizes of the random parts of a code, the wrapped key and the key bundle.
const (
	CodeRandomSize  = 5 // bytes behind the 8 symbols of a code
	WrapSaltSize    = 32
	WrapIVSize      = 16
	BundleSaltSize  = 32
	BundleNonceSize = 12
	AdvRandomSize   = 32
)

const (
	bundlePlainSize  = 3 * 32 // companionIdentity || primaryIdentity || advRandom
	bundleKeyInfo    = "link_code_pairing_key_bundle_encryption_key"
	advSecretKDFInfo = "adv_secret"
)

// NewCode returns a random 8-character code made of 5 bytes read from rand.
func NewCode(rand io.Reader) (string, error) {
	var b [CodeRandomSize]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("pairing: reading randomness: %w", err)
	}
	return EncodeCode(b), nil
}

// EncodeCode maps 40 bits to 8 symbols of CodeAlphabet, 5 bits each, most
// significant first (RFC 4648 base32 bit order, no padding).
func EncodeCode(b [CodeRandomSize]byte) string {
	v := uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
	var out [CodeLength]byte
	for i := CodeLength - 1; i >= 0; i-- {
		out[i] = CodeAlphabet[v&31]
		v >>= 5
	}
	return string(out[:])
}

// FormatCode shows a valid code as users see it, "XXXX-XXXX".
func FormatCode(code string) (string, error) {
	c, err := NormalizeCode(code)
	if err != nil {
		return "", err
	}
	return c[:4] + "-" + c[4:], nil
}

// NormalizeCode upper-cases s, drops spaces and at most one dash, and checks
// that 8 symbols of CodeAlphabet remain. The error never repeats the code.
func NormalizeCode(s string) (string, error) {
	var out [CodeLength]byte
	n, dashes := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			continue
		case c == '-':
			if dashes++; dashes > 1 {
				return "", fmt.Errorf("%w: more than one dash", ErrInvalidCode)
			}
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		if strings.IndexByte(CodeAlphabet, c) < 0 {
			return "", fmt.Errorf("%w: character %d is not in the alphabet", ErrInvalidCode, i+1)
		}
		if n == CodeLength {
			return "", fmt.Errorf("%w: more than %d characters", ErrInvalidCode, CodeLength)
		}
		out[n] = c
		n++
	}
	if n != CodeLength {
		return "", fmt.Errorf("%w: %d characters, want %d", ErrInvalidCode, n, CodeLength)
	}
	return string(out[:]), nil
}

// CodeKey derives the 32-byte wrapping key from a code and a 32-byte salt:
// PBKDF2-HMAC-SHA256(code, salt, 131072 iterations). The code is normalized
// first, so "1234-5678" and "12345678" give the same key.
func CodeKey(code string, salt []byte) ([32]byte, error) {
	var key [32]byte
	c, err := NormalizeCode(code)
	if err != nil {
		return key, err
	}
	if len(salt) != WrapSaltSize {
		return key, parseErr("code salt", "want 32 bytes, got "+strconv.Itoa(len(salt)), nil)
	}
	k, err := pbkdf2.Key(sha256.New, c, salt, PBKDF2Iterations, len(key))
	if err != nil {
		return key, fmt.Errorf("pairing: pbkdf2: %w", err)
	}
	copy(key[:], k)
	return key, nil
}

// WrapKey wraps an ephemeral public key with the code:
//
//	salt(32) || iv(16) || AES-256-CTR(key = CodeKey(code, salt), iv, pub)(32)
//
// It reads the salt and then the IV from rand.
func WrapKey(rand io.Reader, code string, pub keys.PublicKey) ([]byte, error) {
	var salt [WrapSaltSize]byte
	var iv [WrapIVSize]byte
	if _, err := io.ReadFull(rand, salt[:]); err != nil {
		return nil, fmt.Errorf("pairing: reading randomness: %w", err)
	}
	if _, err := io.ReadFull(rand, iv[:]); err != nil {
		return nil, fmt.Errorf("pairing: reading randomness: %w", err)
	}
	return WrapKeyWith(code, salt, iv, pub)
}

// WrapKeyWith is WrapKey with a given salt and IV, for known-answer tests.
// Never reuse a salt/IV pair in production.
func WrapKeyWith(code string, salt [WrapSaltSize]byte, iv [WrapIVSize]byte, pub keys.PublicKey) ([]byte, error) {
	key, err := CodeKey(code, salt[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, WrappedKeySize)
	out = append(out, salt[:]...)
	out = append(out, iv[:]...)
	out = append(out, pub.Bytes()...)
	if err := ctrXOR(key, iv[:], out[WrapSaltSize+WrapIVSize:]); err != nil {
		return nil, err
	}
	return out, nil
}

// UnwrapKey reverses WrapKey: the key is derived from the embedded salt and
// CTR is applied again. A wrong code yields a wrong key, not an error: the
// mismatch only shows later, when the key bundle does not open.
func UnwrapKey(code string, wrapped []byte) (keys.PublicKey, error) {
	if len(wrapped) != WrappedKeySize {
		return keys.PublicKey{}, parseErr("wrapped key", "want 80 bytes, got "+strconv.Itoa(len(wrapped)), nil)
	}
	key, err := CodeKey(code, wrapped[:WrapSaltSize])
	if err != nil {
		return keys.PublicKey{}, err
	}
	pub := make([]byte, 32)
	copy(pub, wrapped[WrapSaltSize+WrapIVSize:])
	if err := ctrXOR(key, wrapped[WrapSaltSize:WrapSaltSize+WrapIVSize], pub); err != nil {
		return keys.PublicKey{}, err
	}
	return keys.PublicKeyFromBytes(pub)
}

// ctrXOR applies AES-256-CTR in place; the whole 16-byte IV is the initial
// big-endian counter, as Go's cipher.NewCTR and Node's aes-256-ctr use it.
func ctrXOR(key [32]byte, iv, buf []byte) error {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return fmt.Errorf("pairing: aes: %w", err)
	}
	cipher.NewCTR(block, iv).XORKeyStream(buf, buf)
	return nil
}

// CompanionFinish is the companion's stage 2 (PROTOCOL.md §14.5): it returns
// the 156-byte wrapped key bundle for <link_code_pairing_wrapped_key_bundle>
// and the adv secret that replaces the QR one and keys the pair-success
// HMAC. primaryEph is the key unwrapped from the primary_hello notification.
//
// It reads, in order, the bundle salt (32), the GCM nonce (12) and the adv
// random (32) from rand.
func CompanionFinish(rand io.Reader, companionEph keys.PrivateKey, companionIdentity keys.KeyPair, primaryEph, primaryIdentity keys.PublicKey) (bundle []byte, advSecret [32]byte, err error) {
	var salt [BundleSaltSize]byte
	var nonce [BundleNonceSize]byte
	var advRandom [AdvRandomSize]byte
	for _, b := range [][]byte{salt[:], nonce[:], advRandom[:]} {
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, advSecret, fmt.Errorf("pairing: reading randomness: %w", err)
		}
	}
	return companionFinish(companionEph, companionIdentity, primaryEph, primaryIdentity, salt, nonce, advRandom)
}

func companionFinish(companionEph keys.PrivateKey, companionIdentity keys.KeyPair, primaryEph, primaryIdentity keys.PublicKey,
	salt [BundleSaltSize]byte, nonce [BundleNonceSize]byte, advRandom [AdvRandomSize]byte) (bundle []byte, advSecret [32]byte, err error) {
	if companionEph.IsZero() || companionIdentity.Private.IsZero() {
		return nil, advSecret, fmt.Errorf("%w: zero private key", ErrInvalidKey)
	}
	ephShared, err := dh(companionEph, primaryEph, "primary ephemeral")
	if err != nil {
		return nil, advSecret, err
	}
	idShared, err := dh(companionIdentity.Private, primaryIdentity, "primary identity")
	if err != nil {
		return nil, advSecret, err
	}
	aead, err := bundleAEAD(ephShared, salt[:])
	if err != nil {
		return nil, advSecret, err
	}
	// Plaintext layout: companionIdentityPub(32) || primaryIdentityPub(32) || advRandom(32).
	plain := make([]byte, 0, bundlePlainSize)
	plain = append(plain, companionIdentity.Public.Bytes()...)
	plain = append(plain, primaryIdentity.Bytes()...)
	plain = append(plain, advRandom[:]...)

	bundle = make([]byte, 0, KeyBundleSize)
	bundle = append(bundle, salt[:]...)
	bundle = append(bundle, nonce[:]...)
	bundle = aead.Seal(bundle, nonce[:], plain, nil)

	advSecret, err = deriveAdvSecret(ephShared, idShared, advRandom[:])
	return bundle, advSecret, err
}

// PrimaryOpenBundle is the primary's side of stage 2: it opens the bundle
// sent in companion_finish, checks that it names companionIdentity and the
// primary's own identity, and derives the same adv secret as the companion.
// companionEph is the key the primary unwrapped from companion_hello.
func PrimaryOpenBundle(primaryEph keys.PrivateKey, primaryIdentity keys.KeyPair, companionEph, companionIdentity keys.PublicKey, bundle []byte) (advSecret [32]byte, err error) {
	if len(bundle) != KeyBundleSize {
		return advSecret, parseErr("key bundle", "want 156 bytes, got "+strconv.Itoa(len(bundle)), nil)
	}
	if primaryEph.IsZero() || primaryIdentity.Private.IsZero() {
		return advSecret, fmt.Errorf("%w: zero private key", ErrInvalidKey)
	}
	ephShared, err := dh(primaryEph, companionEph, "companion ephemeral")
	if err != nil {
		return advSecret, err
	}
	salt := bundle[:BundleSaltSize]
	nonce := bundle[BundleSaltSize : BundleSaltSize+BundleNonceSize]
	aead, err := bundleAEAD(ephShared, salt)
	if err != nil {
		return advSecret, err
	}
	plain, err := aead.Open(nil, nonce, bundle[BundleSaltSize+BundleNonceSize:], nil)
	if err != nil {
		return advSecret, fmt.Errorf("%w: authentication failed (wrong code or tampered bundle)", ErrBundleMismatch)
	}
	if !companionIdentity.Equal(mustPub(plain[0:32])) {
		return advSecret, fmt.Errorf("%w: companion identity differs", ErrBundleMismatch)
	}
	if !primaryIdentity.Public.Equal(mustPub(plain[32:64])) {
		return advSecret, fmt.Errorf("%w: primary identity differs", ErrBundleMismatch)
	}
	idShared, err := dh(primaryIdentity.Private, companionIdentity, "companion identity")
	if err != nil {
		return advSecret, err
	}
	return deriveAdvSecret(ephShared, idShared, plain[64:96])
}

func mustPub(b []byte) keys.PublicKey {
	p, _ := keys.PublicKeyFromBytes(b) // callers pass exactly 32 bytes
	return p
}

func dh(priv keys.PrivateKey, pub keys.PublicKey, what string) ([]byte, error) {
	if pub.IsZero() {
		return nil, fmt.Errorf("%w: %s is zero", ErrInvalidKey, what)
	}
	s, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidKey, what, err)
	}
	return s, nil
}

// bundleAEAD returns AES-256-GCM keyed with
// HKDF-SHA256(ephShared, salt, "link_code_pairing_key_bundle_encryption_key").
func bundleAEAD(ephShared, salt []byte) (cipher.AEAD, error) {
	key, err := bundleKey(ephShared, salt)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pairing: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pairing: gcm: %w", err)
	}
	return aead, nil
}

// bundleKey is HKDF-SHA256(ephShared, salt,
// "link_code_pairing_key_bundle_encryption_key", 32).
func bundleKey(ephShared, salt []byte) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, ephShared, salt, bundleKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("pairing: hkdf: %w", err)
	}
	return key, nil
}

// deriveAdvSecret is HKDF-SHA256(ephShared || idShared || advRandom, no salt,
// "adv_secret", 32).
func deriveAdvSecret(ephShared, idShared, advRandom []byte) ([32]byte, error) {
	var out [32]byte
	ikm := make([]byte, 0, len(ephShared)+len(idShared)+len(advRandom))
	ikm = append(ikm, ephShared...)
	ikm = append(ikm, idShared...)
	ikm = append(ikm, advRandom...)
	k, err := hkdf.Key(sha256.New, ikm, nil, advSecretKDFInfo, len(out))
	if err != nil {
		return out, fmt.Errorf("pairing: hkdf: %w", err)
	}
	copy(out[:], k)
	return out, nil
}
