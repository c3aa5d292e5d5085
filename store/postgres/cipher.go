package postgres

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/walinkdev/walink/keys"
)

// Cipher seals the secret columns (private keys and the adv secret) at
// rest. Seal must use a fresh nonce each call; aad binds the result to its
// row and column, so Open must fail when either changed. Implementations
// must be safe for concurrent use. [NewAESGCM] is the stock one.
type Cipher interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Errors about sealed columns.
var (
	// ErrDecrypt reports a sealed column that the configured Cipher cannot
	// open: a wrong key, or a blob that was altered or moved to another
	// row.
	ErrDecrypt = errors.New(pkgName + ": cannot decrypt a sealed secret (wrong key or tampered row)")
	// ErrNoCipher reports a sealed column in a store opened without a
	// Cipher.
	ErrNoCipher = errors.New(pkgName + ": secrets are encrypted; open the store with WithCipher")
)

// WithCipher seals every secret the store writes from now on. Secrets
// already stored in the clear stay readable and are sealed when their row
// is next written, or all at once by Store.Reseal.
func WithCipher(c Cipher) Option { return func(cfg *config) { cfg.cipher = c } }

// NewAESGCM returns a Cipher using AES-256-GCM with random 96-bit nonces
// drawn from rand (crypto/rand.Reader in production). key must be 32 bytes
// of key material (derive it from a passphrase with a memory-hard KDF, not
// a plain hash).
func NewAESGCM(key []byte, rand io.Reader) (Cipher, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%s: AES-GCM key must be 32 bytes, got %d", pkgName, len(key))
	}
	if rand == nil {
		return nil, fmt.Errorf("%s: AES-GCM needs a randomness source", pkgName)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkgName, err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkgName, err)
	}
	return &aesGCM{g: g, rand: rand}, nil
}

type aesGCM struct {
	g    cipher.AEAD
	rand io.Reader
}

// Seal returns nonce || ciphertext || tag.
func (a *aesGCM) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, a.g.NonceSize(), a.g.NonceSize()+len(plaintext)+a.g.Overhead())
	if _, err := io.ReadFull(a.rand, out); err != nil {
		return nil, fmt.Errorf("%s: reading nonce: %w", pkgName, err)
	}
	return a.g.Seal(out, out, plaintext, aad), nil
}

func (a *aesGCM) Open(sealed, aad []byte) ([]byte, error) {
	n := a.g.NonceSize()
	if len(sealed) < n+a.g.Overhead() {
		return nil, ErrDecrypt
	}
	pt, err := a.g.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// sealedV1 starts a sealed column: the envelope is
//
//	0x01 || Cipher.Seal(secret, aad)
//
// and a column in the clear is exactly 32 bytes, so the two never collide
// (a sealed value carries at least a nonce or a tag on top of the 32
// bytes). The version byte leaves room for another envelope later.
const sealedV1 = 0x01

// secrets seals and opens the secret columns of one store.
type secrets struct{ c Cipher }

// aad names where a secret lives: the logical column (the same in every
// walink store, so a dump moved between stores still opens), the owning
// device's noise key and, for pre-keys, the id.
func aad(col string, owner []byte, id uint32) []byte {
	b := make([]byte, 0, 24+len(col)+len(owner)+4)
	b = append(b, "walink secret v1\x00"...)
	b = append(b, col...)
	b = append(b, 0)
	b = append(b, owner...)
	return binary.BigEndian.AppendUint32(b, id)
}

func (s secrets) seal(col string, owner []byte, id uint32, secret []byte) ([]byte, error) {
	if s.c == nil {
		return secret, nil
	}
	sealed, err := s.c.Seal(secret, aad(col, owner, id))
	if err != nil {
		return nil, fmt.Errorf("%s: sealing %s: %w", pkgName, col, err)
	}
	return append([]byte{sealedV1}, sealed...), nil
}

// open returns the 32-byte secret held in b, unsealing it if needed;
// sealed reports whether it was.
func (s secrets) open(col string, owner []byte, id uint32, b []byte) (secret []byte, sealed bool, err error) {
	if len(b) == keys.Size {
		return b, false, nil
	}
	if len(b) < keys.Size || b[0] != sealedV1 {
		return nil, false, fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, col, len(b))
	}
	if s.c == nil {
		return nil, true, fmt.Errorf("%w (column %s)", ErrNoCipher, col)
	}
	pt, err := s.c.Open(b[1:], aad(col, owner, id))
	if errors.Is(err, ErrDecrypt) {
		return nil, true, fmt.Errorf("%w (column %s)", ErrDecrypt, col)
	}
	if err != nil {
		// A custom Cipher (a KMS, say) may fail for its own reasons.
		return nil, true, fmt.Errorf("%s: opening %s: %w", pkgName, col, err)
	}
	if len(pt) != keys.Size {
		return nil, true, fmt.Errorf("%w: %s unseals to %d bytes", ErrCorrupt, col, len(pt))
	}
	return pt, true, nil
}
