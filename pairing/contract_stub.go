// CONTRACT STUB — the pairing helper implements these; signatures are fixed.
package pairing

import (
	"errors"
	"io"

	"github.com/walinkdev/walink/keys"
)

// QRURLPrefix starts the current QR string form.
const QRURLPrefix = "https://wa.me/settings/linked_devices#"

// QR is the content of a pairing QR code.
type QR struct {
	Ref        string
	Noise      keys.PublicKey
	Identity   keys.PublicKey
	AdvSecret  [32]byte
	ClientType string // 5th field, e.g. "1" (Chrome); "" for the legacy 4-field form
}

// String renders the current form: prefix + REF,NOISE,IDENTITY,ADV,TYPE
// (TYPE "1" when ClientType is empty).
func (q QR) String() string { panic("unimplemented") }

// ParseQR accepts the 4- and 5-field forms, with or without the prefix.
func ParseQR(s string) (QR, error) { panic("unimplemented") }

// Pair code constants (PROTOCOL.md §14, §23.1).
const (
	CodeAlphabet     = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
	CodeLength       = 8
	PBKDF2Iterations = 131072
	WrappedKeySize   = 80
	KeyBundleSize    = 156
)

// Errors.
var (
	ErrInvalidCode       = errors.New("pairing: invalid pair code")
	ErrMalformed         = errors.New("pairing: malformed input")
	ErrHMACMismatch      = errors.New("pairing: hmac mismatch")
	ErrSignatureMismatch = errors.New("pairing: signature mismatch")
	ErrInvalidKey        = errors.New("pairing: invalid key")
	ErrBundleMismatch    = errors.New("pairing: key bundle does not match")
)

// NewCode returns a random 8-character code.
func NewCode(rand io.Reader) (string, error) { panic("unimplemented") }

// NormalizeCode upper-cases s, drops one dash/spaces and validates it.
func NormalizeCode(s string) (string, error) { panic("unimplemented") }

// WrapKey wraps an ephemeral public key with the code: salt(32)||iv(16)||ct(32).
func WrapKey(rand io.Reader, code string, pub keys.PublicKey) ([]byte, error) {
	panic("unimplemented")
}

// UnwrapKey reverses WrapKey.
func UnwrapKey(code string, wrapped []byte) (keys.PublicKey, error) { panic("unimplemented") }

// CompanionFinish is the companion's stage 2: it returns the 156-byte
// wrapped key bundle and the derived adv secret.
func CompanionFinish(rand io.Reader, companionEph keys.PrivateKey, companionIdentity keys.KeyPair, primaryEph, primaryIdentity keys.PublicKey) (bundle []byte, advSecret [32]byte, err error) {
	panic("unimplemented")
}

// PrimaryOpenBundle is the primary's side of stage 2.
func PrimaryOpenBundle(primaryEph keys.PrivateKey, primaryIdentity keys.KeyPair, companionEph, companionIdentity keys.PublicKey, bundle []byte) (advSecret [32]byte, err error) {
	panic("unimplemented")
}

// AccountType is ADVEncryptionType.
type AccountType int32

// Account types.
const (
	AccountE2EE   AccountType = 0
	AccountHosted AccountType = 1
)

// DeviceIdentity is ADVDeviceIdentity.
type DeviceIdentity struct {
	RawID       uint32
	Timestamp   uint64
	KeyIndex    uint32
	AccountType AccountType
	DeviceType  int32
}

// SignDeviceIdentity is the primary's side: it returns the serialized
// ADVSignedDeviceIdentityHMAC for <pair-success><device-identity>.
func SignDeviceIdentity(rand io.Reader, account keys.KeyPair, companionIdentity keys.PublicKey, advSecret [32]byte, id DeviceIdentity) ([]byte, error) {
	panic("unimplemented")
}

// Verified is what the companion learns from a valid pair-success.
type Verified struct {
	Identity   DeviceIdentity
	AccountKey keys.PublicKey
	Account    []byte // ADVSignedDeviceIdentity with device signature, account key kept (to store)
	Reply      []byte // same without the account key (pair-device-sign content)
}

// VerifyPairSuccess checks the HMAC and account signature and makes the
// device signature (companion role).
func VerifyPairSuccess(rand io.Reader, advSecret [32]byte, companionIdentity keys.KeyPair, container []byte) (*Verified, error) {
	panic("unimplemented")
}

// ErrorReply maps a VerifyPairSuccess error to WhatsApp's error reply.
func ErrorReply(err error) (code int, text string) { panic("unimplemented") }

// VerifyDeviceSignature is the server's check of a pair-device-sign reply.
func VerifyDeviceSignature(reply []byte, companionIdentity, accountKey keys.PublicKey, hosted bool) (DeviceIdentity, error) {
	panic("unimplemented")
}
