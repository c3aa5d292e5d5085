package sqlite

import (
	"errors"
	"io"

	"github.com/walinkdev/walink/store/seal"
)

// Cipher seals the secret columns (private keys and the adv secret) at
// rest. Seal must use a fresh nonce each call; aad binds the result to its
// row and column, so Open must fail when either changed. Implementations
// must be safe for concurrent use. [NewAESGCM] is the stock one.
type Cipher = seal.Cipher

// Errors about sealed columns.
var (
	// ErrDecrypt reports a sealed column that the configured Cipher cannot
	// open: a wrong key, or a blob that was altered or moved to another
	// row.
	ErrDecrypt = seal.ErrDecrypt
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
// of key material; for a passphrase use seal.NewPassphrase (Argon2id), and
// for keys from the environment seal.FromEnv.
func NewAESGCM(key []byte, rand io.Reader) (Cipher, error) { return seal.NewAESGCM(key, rand) }
