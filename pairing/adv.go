package pairing

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/waproto"
)

// AccountType is ADVEncryptionType.
type AccountType int32

// Account types.
const (
	AccountE2EE   AccountType = 0
	AccountHosted AccountType = 1
)

// DeviceIdentity is ADVDeviceIdentity, chosen by the primary.
type DeviceIdentity struct {
	RawID       uint32
	Timestamp   uint64 // pairing time, unix seconds
	KeyIndex    uint32 // the key-index attribute of the reply
	AccountType AccountType
	DeviceType  int32 // ADVEncryptionType of the device; 1 (hosted) selects the hosted account-signature prefix
}

// ADV signature prefixes (PROTOCOL.md §12, §23.2 item 3).
var (
	prefixAccountSig       = []byte{6, 0}
	prefixDeviceSig        = []byte{6, 1}
	prefixHostedAccountSig = []byte{6, 5} // also the hosted HMAC prefix
	prefixHostedDeviceSig  = []byte{6, 6}
)

// Who picks which prefix, as WA Web does (confirmed by WR PR #1440 and WM):
//   - HMAC: 06 05 only when the outer container's accountType is HOSTED;
//   - account signature: 06 05 when the signed ADVDeviceIdentity.deviceType
//     is HOSTED, else 06 00;
//   - device signature made at pairing: always 06 01.
// The three are independent decisions.

func hmacInput(containerType waproto.ADVEncryptionType, details []byte) []byte {
	if containerType == waproto.ADVEncryptionType_HOSTED {
		return concat(prefixHostedAccountSig, details)
	}
	return details
}

func advHMAC(advSecret *[32]byte, containerType waproto.ADVEncryptionType, details []byte) []byte {
	m := hmac.New(sha256.New, advSecret[:])
	m.Write(hmacInput(containerType, details))
	return m.Sum(nil)
}

// accountSigMessage is prefix || details || companionIdentityPub.
func accountSigMessage(deviceType waproto.ADVEncryptionType, details []byte, companion keys.PublicKey) []byte {
	p := prefixAccountSig
	if deviceType == waproto.ADVEncryptionType_HOSTED {
		p = prefixHostedAccountSig
	}
	return concat(p, details, companion.Bytes())
}

// deviceSigMessage is prefix || details || companionIdentityPub || accountKey.
func deviceSigMessage(prefix, details []byte, companion, account keys.PublicKey) []byte {
	return concat(prefix, details, companion.Bytes(), account.Bytes())
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func (id DeviceIdentity) proto() *waproto.ADVDeviceIdentity {
	m := &waproto.ADVDeviceIdentity{
		RawID:     proto.Uint32(id.RawID),
		Timestamp: proto.Uint64(id.Timestamp),
		KeyIndex:  proto.Uint32(id.KeyIndex),
	}
	// Zero enums are left out, as the phone does (VEC adv_device_identity_details).
	if id.AccountType != 0 {
		m.AccountType = waproto.ADVEncryptionType(id.AccountType).Enum()
	}
	if id.DeviceType != 0 {
		m.DeviceType = waproto.ADVEncryptionType(id.DeviceType).Enum()
	}
	return m
}

func identityFromProto(m *waproto.ADVDeviceIdentity) DeviceIdentity {
	return DeviceIdentity{
		RawID:       m.GetRawID(),
		Timestamp:   m.GetTimestamp(),
		KeyIndex:    m.GetKeyIndex(),
		AccountType: AccountType(m.GetAccountType()),
		DeviceType:  int32(m.GetDeviceType()),
	}
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// SignDeviceIdentity is the primary's side: it returns the serialized
// ADVSignedDeviceIdentityHMAC for <pair-success><device-identity>.
//
//	details   = ADVDeviceIdentity(id)
//	signed    = ADVSignedDeviceIdentity{details, accountSignatureKey = account.Public,
//	            accountSignature = XEdDSA(account, 06 00|06 05 || details || companionIdentity)}
//	container = ADVSignedDeviceIdentityHMAC{signed, HMAC-SHA256(advSecret, [06 05 ||] signed),
//	            accountType = HOSTED when id.AccountType is AccountHosted}
//
// rand feeds the XEdDSA signature nonce.
func SignDeviceIdentity(rand io.Reader, account keys.KeyPair, companionIdentity keys.PublicKey, advSecret [32]byte, id DeviceIdentity) ([]byte, error) {
	if account.Private.IsZero() {
		return nil, fmt.Errorf("%w: zero account key", ErrInvalidKey)
	}
	if err := checkUsableKey(companionIdentity, "companion identity"); err != nil {
		return nil, err
	}
	pid := id.proto()
	details, err := marshalOpts.Marshal(pid)
	if err != nil {
		return nil, fmt.Errorf("pairing: marshal device identity: %w", err)
	}
	sig, err := account.Private.Sign(rand, accountSigMessage(pid.GetDeviceType(), details, companionIdentity))
	if err != nil {
		return nil, fmt.Errorf("pairing: account signature: %w", err)
	}
	signed, err := marshalOpts.Marshal(&waproto.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: account.Public.Bytes(),
		AccountSignature:    sig[:],
	})
	if err != nil {
		return nil, fmt.Errorf("pairing: marshal signed identity: %w", err)
	}
	container := &waproto.ADVSignedDeviceIdentityHMAC{Details: signed}
	ctype := waproto.ADVEncryptionType_E2EE
	if id.AccountType == AccountHosted {
		ctype = waproto.ADVEncryptionType_HOSTED
		container.AccountType = ctype.Enum()
	}
	container.HMAC = advHMAC(&advSecret, ctype, signed)
	out, err := marshalOpts.Marshal(container)
	if err != nil {
		return nil, fmt.Errorf("pairing: marshal container: %w", err)
	}
	return out, nil
}

// Verified is what the companion learns from a valid pair-success.
type Verified struct {
	Identity      DeviceIdentity
	AccountKey    keys.PublicKey // the primary's identity key, to trust as its device 0
	HostedAccount bool           // the container said accountType HOSTED
	Account       []byte         // ADVSignedDeviceIdentity with device signature, account key kept (to store)
	Reply         []byte         // same without the account key (pair-device-sign content)
}

// VerifyPairSuccess checks a <device-identity> container from pair-success
// and makes the device signature (companion role), in WhatsApp's order:
//
//  1. container parses, else ErrMalformed
//  2. HMAC-SHA256(advSecret, [06 05 if hosted container ||] details) equals
//     the container's HMAC, compared in constant time, else ErrHMACMismatch
//  3. ADVSignedDeviceIdentity and ADVDeviceIdentity parse, else ErrMalformed
//  4. accountSignatureKey is a usable 32-byte key, else ErrInvalidKey
//  5. the account signature verifies, else ErrSignatureMismatch
//  6. deviceSignature = XEdDSA(companion identity, 06 01 || details ||
//     companionIdentityPub || accountSignatureKey), drawing its nonce from rand
//
// Map a failure to the error IQ with ErrorReply.
func VerifyPairSuccess(rand io.Reader, advSecret [32]byte, companionIdentity keys.KeyPair, container []byte) (*Verified, error) {
	var c waproto.ADVSignedDeviceIdentityHMAC
	if err := proto.Unmarshal(container, &c); err != nil {
		return nil, parseErr("device identity container", "", err)
	}
	if c.Details == nil {
		return nil, parseErr("device identity container", "no details", nil)
	}
	want := advHMAC(&advSecret, c.GetAccountType(), c.GetDetails())
	if !hmac.Equal(want, c.GetHMAC()) {
		return nil, ErrHMACMismatch
	}

	var signed waproto.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(c.GetDetails(), &signed); err != nil {
		return nil, parseErr("signed device identity", "", err)
	}
	var pid waproto.ADVDeviceIdentity
	if err := proto.Unmarshal(signed.GetDetails(), &pid); err != nil {
		return nil, parseErr("device identity", "", err)
	}
	accountKey, err := keys.PublicKeyFromBytes(signed.GetAccountSignatureKey())
	if err != nil {
		return nil, fmt.Errorf("%w: account signature key: %w", ErrInvalidKey, err)
	}
	if err := checkUsableKey(accountKey, "account signature key"); err != nil {
		return nil, err
	}
	if !keys.Verify(accountKey, accountSigMessage(pid.GetDeviceType(), signed.GetDetails(), companionIdentity.Public), signed.GetAccountSignature()) {
		return nil, fmt.Errorf("%w: account signature", ErrSignatureMismatch)
	}

	devSig, err := companionIdentity.Private.Sign(rand, deviceSigMessage(prefixDeviceSig, signed.GetDetails(), companionIdentity.Public, accountKey))
	if err != nil {
		return nil, fmt.Errorf("pairing: device signature: %w", err)
	}
	signed.DeviceSignature = devSig[:]
	account, err := marshalOpts.Marshal(&signed)
	if err != nil {
		return nil, fmt.Errorf("pairing: marshal account: %w", err)
	}
	signed.AccountSignatureKey = nil
	reply, err := marshalOpts.Marshal(&signed)
	if err != nil {
		return nil, fmt.Errorf("pairing: marshal reply: %w", err)
	}
	return &Verified{
		Identity:      identityFromProto(&pid),
		AccountKey:    accountKey,
		HostedAccount: c.GetAccountType() == waproto.ADVEncryptionType_HOSTED,
		Account:       account,
		Reply:         reply,
	}, nil
}

// ErrorReply maps a VerifyPairSuccess error to WhatsApp's error reply
// (PROTOCOL.md §11.6): 401 hmac-mismatch, 401 signature-mismatch,
// 401 invalid-key, and 500 internal-error for anything else. A nil error
// gives (0, "").
func ErrorReply(err error) (code int, text string) {
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, ErrHMACMismatch):
		return 401, "hmac-mismatch"
	case errors.Is(err, ErrSignatureMismatch):
		return 401, "signature-mismatch"
	case errors.Is(err, ErrInvalidKey):
		return 401, "invalid-key"
	}
	return 500, "internal-error"
}

// VerifyDeviceSignature is the server's check of a pair-device-sign reply
// (an ADVSignedDeviceIdentity without the account key). It re-checks the
// account signature, so details the primary did not sign are refused, and
// verifies the device signature over
//
//	prefix || details || companionIdentity || accountKey
//
// accountKey must be given because the reply omits it. prefix is 06 01, the
// one every companion uses at pairing; hosted selects 06 06, which WA Web
// uses only for devices whose JID is hosted when checking fetched device
// identities, so pass false for a pair-device-sign reply.
func VerifyDeviceSignature(reply []byte, companionIdentity, accountKey keys.PublicKey, hosted bool) (DeviceIdentity, error) {
	var signed waproto.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(reply, &signed); err != nil {
		return DeviceIdentity{}, parseErr("device identity reply", "", err)
	}
	if signed.Details == nil {
		return DeviceIdentity{}, parseErr("device identity reply", "no details", nil)
	}
	var pid waproto.ADVDeviceIdentity
	if err := proto.Unmarshal(signed.GetDetails(), &pid); err != nil {
		return DeviceIdentity{}, parseErr("device identity", "", err)
	}
	if err := checkUsableKey(companionIdentity, "companion identity"); err != nil {
		return DeviceIdentity{}, err
	}
	if err := checkUsableKey(accountKey, "account key"); err != nil {
		return DeviceIdentity{}, err
	}
	if k := signed.GetAccountSignatureKey(); k != nil && !accountKey.Equal(mustPubOrZero(k)) {
		return DeviceIdentity{}, fmt.Errorf("%w: reply names another account key", ErrSignatureMismatch)
	}
	if !keys.Verify(accountKey, accountSigMessage(pid.GetDeviceType(), signed.GetDetails(), companionIdentity), signed.GetAccountSignature()) {
		return DeviceIdentity{}, fmt.Errorf("%w: account signature", ErrSignatureMismatch)
	}
	prefix := prefixDeviceSig
	if hosted {
		prefix = prefixHostedDeviceSig
	}
	if !keys.Verify(companionIdentity, deviceSigMessage(prefix, signed.GetDetails(), companionIdentity, accountKey), signed.GetDeviceSignature()) {
		return DeviceIdentity{}, fmt.Errorf("%w: device signature", ErrSignatureMismatch)
	}
	return identityFromProto(&pid), nil
}

// checkUsableKey refuses the zero key and every low-order point (u = 0, 1,
// the order-8 points and their non-canonical forms). Such a key would let
// trivial forged XEdDSA signatures verify with a fair probability, e.g.
// R = identity, s = 0 under u = 0 whenever the challenge is even.
func checkUsableKey(pub keys.PublicKey, what string) error {
	if pub.IsZero() {
		return fmt.Errorf("%w: %s is zero", ErrInvalidKey, what)
	}
	if pub.IsLowOrder() {
		return fmt.Errorf("%w: %s is a low-order point", ErrInvalidKey, what)
	}
	return nil
}

func mustPubOrZero(b []byte) keys.PublicKey {
	if len(b) != keys.Size {
		return keys.PublicKey{}
	}
	return mustPub(b)
}

// KeyIndexAttr formats the key-index attribute of <device-identity> in the
// pair-device-sign reply.
func (id DeviceIdentity) KeyIndexAttr() string { return strconv.FormatUint(uint64(id.KeyIndex), 10) }
