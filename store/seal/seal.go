package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Cipher seals secrets at rest. Seal must use a fresh nonce each call; aad
// binds the result to where it is stored, so Open must fail when either
// changed. Implementations must be safe for concurrent use.
type Cipher interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Errors.
var (
	// ErrDecrypt reports a sealed value that does not open: a wrong key or
	// passphrase, or a value that was altered or moved.
	ErrDecrypt = errors.New("seal: cannot decrypt a sealed secret (wrong key or tampered value)")
	// ErrBadKey reports key material of the wrong size or encoding.
	ErrBadKey = errors.New("seal: bad key")
	// ErrAmbiguousKey reports more than one key source set in the
	// environment.
	ErrAmbiguousKey = errors.New("seal: more than one of WALINK_STORE_KEY, WALINK_STORE_KEY_FILE, WALINK_STORE_PASSPHRASE, WALINK_STORE_PASSPHRASE_FILE is set")
	// ErrInsecureFile reports a key or passphrase file that group or
	// others can read.
	ErrInsecureFile = errors.New("seal: key file is readable by group or others")
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

// NewAESGCM returns a Cipher using AES-256-GCM with random 96-bit nonces
// drawn from rand (crypto/rand.Reader in production). key must be 32 bytes
// of key material; derive one from a passphrase with NewPassphrase, never
// with a plain hash.
func NewAESGCM(key []byte, rand io.Reader) (Cipher, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if rand == nil {
		return nil, fmt.Errorf("seal: AES-GCM needs a randomness source")
	}
	return &aesGCM{g: g, rand: rand}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: AES-GCM key must be 32 bytes, got %d", ErrBadKey, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return g, nil
}

type aesGCM struct {
	g    cipher.AEAD
	rand io.Reader
}

// Seal returns nonce || ciphertext || tag.
func (a *aesGCM) Seal(plaintext, aad []byte) ([]byte, error) {
	return sealGCM(a.g, a.rand, nil, plaintext, aad)
}

func (a *aesGCM) Open(sealed, aad []byte) ([]byte, error) { return openGCM(a.g, sealed, aad) }

// sealGCM appends nonce || ciphertext || tag to prefix.
func sealGCM(g cipher.AEAD, rand io.Reader, prefix, plaintext, aad []byte) ([]byte, error) {
	n := len(prefix)
	out := make([]byte, n+g.NonceSize(), n+g.NonceSize()+len(plaintext)+g.Overhead())
	copy(out, prefix)
	if _, err := io.ReadFull(rand, out[n:]); err != nil {
		return nil, fmt.Errorf("seal: reading nonce: %w", err)
	}
	return g.Seal(out, out[n:], plaintext, aad), nil
}

func openGCM(g cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	n := g.NonceSize()
	if len(sealed) < n+g.Overhead() {
		return nil, ErrDecrypt
	}
	pt, err := g.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Argon2id parameters of the passphrase envelope, version 1: RFC 9106's
// second recommended setting (t=3, 64 MiB). They are fixed by the version
// byte so a tampered value cannot ask for a huge derivation.
const (
	passV1      = 0x01
	saltSize    = 16
	argonTime   = 3
	argonMemory = 64 * 1024 // KiB
	argonLanes  = 4
	// maxCachedSalts bounds the derived keys kept per Cipher. Salts come
	// from the processes that wrote the store; rewriting rows (or a
	// store's Reseal) converges them to one.
	maxCachedSalts = 16
)

// argonIDKey is argon2.IDKey; tests replace it to watch the parameters a
// sealed value makes Open use (always the constants above).
var argonIDKey = argon2.IDKey

// NewPassphrase returns a Cipher under keys derived from passphrase with
// Argon2id. It draws its salt and nonces from rand and derives its own key
// now (about 64 MiB and a fraction of a second). Sealed values are
//
//	0x01 || salt (16) || nonce (12) || ciphertext || tag (16)
func NewPassphrase(passphrase []byte, rand io.Reader) (Cipher, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("%w: empty passphrase", ErrBadKey)
	}
	if rand == nil {
		return nil, fmt.Errorf("seal: passphrase cipher needs a randomness source")
	}
	p := &passCipher{pass: append([]byte(nil), passphrase...), rand: rand, keys: map[[saltSize]byte]cipher.AEAD{}}
	if _, err := io.ReadFull(rand, p.salt[:]); err != nil {
		return nil, fmt.Errorf("seal: reading salt: %w", err)
	}
	g, err := p.derive(p.salt)
	if err != nil {
		return nil, err
	}
	p.own = g
	return p, nil
}

type passCipher struct {
	pass []byte
	rand io.Reader
	salt [saltSize]byte
	own  cipher.AEAD

	mu   sync.Mutex
	keys map[[saltSize]byte]cipher.AEAD
}

func (p *passCipher) derive(salt [saltSize]byte) (cipher.AEAD, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g, ok := p.keys[salt]; ok {
		return g, nil
	}
	key := argonIDKey(p.pass, salt[:], argonTime, argonMemory, argonLanes, KeySize)
	g, err := newGCM(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	if len(p.keys) >= maxCachedSalts {
		for k := range p.keys { // evict any one; the own key is kept in p.own
			delete(p.keys, k)
			break
		}
	}
	p.keys[salt] = g
	return g, nil
}

func (p *passCipher) Seal(plaintext, aad []byte) ([]byte, error) {
	prefix := append([]byte{passV1}, p.salt[:]...)
	return sealGCM(p.own, p.rand, prefix, plaintext, aad)
}

func (p *passCipher) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+saltSize || sealed[0] != passV1 {
		return nil, ErrDecrypt
	}
	var salt [saltSize]byte
	copy(salt[:], sealed[1:])
	g := p.own
	if salt != p.salt {
		var err error
		if g, err = p.derive(salt); err != nil {
			return nil, err
		}
	}
	return openGCM(g, sealed[1+saltSize:], aad)
}
