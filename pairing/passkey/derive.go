package passkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/waproto"
)

// Constants of the derivations (PASSKEY.md §7).
const (
	// HandoffInfo is the HKDF info of the handoff key.
	HandoffInfo = "shortcake-passkey-handoff-v1"
	// EncryptionKeyInfo is the HKDF info of the pairing request key.
	EncryptionKeyInfo = "Pairing Information Encryption Key"
	// HandoffKeyLifetime is how long a handoff key may key a proof; it is
	// used at most once (PASSKEY.md §4.1).
	HandoffKeyLifetime = 5 * time.Minute
	// NonceSize is the size of the companion and primary nonces.
	NonceSize = 32
	// IVSize is the AES-GCM IV of the encrypted pairing request.
	IVSize = 12
)

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// HandoffKey is HKDF-SHA256(ikm = the adv secret held when the request
// arrived, no salt, info = HandoffInfo, 32 bytes).
func HandoffKey(advSecret [32]byte) [32]byte {
	return hkdf32(advSecret[:], nil, HandoffInfo)
}

// HandoffProof is HMAC-SHA256(handoffKey, prologue payload as sent).
func HandoffProof(handoffKey [32]byte, prologuePayload []byte) [32]byte {
	m := hmac.New(sha256.New, handoffKey[:])
	m.Write(prologuePayload)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// VerifyHandoffProof is the phone's check of a proof: the adv secret it
// showed (QR or pair code) keys it, over the prologue bytes received.
func VerifyHandoffProof(advSecret [32]byte, prologuePayload, proof []byte) bool {
	want := HandoffProof(HandoffKey(advSecret), prologuePayload)
	return len(proof) == len(want) && subtle.ConstantTimeCompare(proof, want[:]) == 1
}

// Commitment is SHA-256(identBytes ‖ companionNonce), identBytes being the
// serialized CompanionEphemeralIdentity exactly as sent.
func Commitment(identBytes []byte, companionNonce [NonceSize]byte) [32]byte {
	h := sha256.New()
	h.Write(identBytes)
	h.Write(companionNonce[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// EncryptionKeySalt is "Companion Pairing <deviceType decimal> with ref <ref>".
func EncryptionKeySalt(deviceType int32, ref string) string {
	return "Companion Pairing " + strconv.FormatInt(int64(deviceType), 10) + " with ref " + ref
}

// EncryptionKey is HKDF-SHA256(ikm = shared X25519 secret of the two
// ephemerals, salt = EncryptionKeySalt, info = EncryptionKeyInfo, 32).
func EncryptionKey(shared []byte, deviceType int32, ref string) [32]byte {
	return hkdf32(shared, []byte(EncryptionKeySalt(deviceType, ref)), EncryptionKeyInfo)
}

func hkdf32(ikm, salt []byte, info string) [32]byte {
	k, err := hkdf.Key(sha256.New, ikm, salt, info, 32)
	if err != nil {
		panic("passkey: hkdf of 32 bytes cannot fail: " + err.Error())
	}
	return [32]byte(k)
}

// ConfirmationCode is the code both sides show, "XXXX-XXXX": the first 5
// bytes of primaryNonce XOR SHA-256(companionNonce ‖ primaryPub), in
// base32 with the pair-code alphabet (PASSKEY.md §7.7).
func ConfirmationCode(companionNonce, primaryPub, primaryNonce [32]byte) string {
	h := sha256.New()
	h.Write(companionNonce[:])
	h.Write(primaryPub[:])
	d := h.Sum(nil)
	var b [pairing.CodeRandomSize]byte
	for i := range b {
		b[i] = primaryNonce[i] ^ d[i]
	}
	c := pairing.EncodeCode(b)
	return c[:4] + "-" + c[4:]
}

// SharedSecret is X25519(own ephemeral private, peer ephemeral public); an
// all-zero result (low-order peer key) is ErrInvalidKey.
func SharedSecret(own keys.PrivateKey, peer keys.PublicKey) ([]byte, error) {
	ss, err := own.ECDH(peer)
	if err != nil {
		return nil, ErrInvalidKey
	}
	return ss, nil
}

// CompanionIdentity is CompanionEphemeralIdentity (PASSKEY.md §5).
type CompanionIdentity struct {
	PublicKey  keys.PublicKey // X25519 ephemeral
	DeviceType int32          // DeviceProps.PlatformType, on the wire even when 0
	Ref        string         // from the <ref/> IQ
}

// Marshal serializes the identity as the companion sends it: fields in
// number order, deviceType always present:
// 0a 20 <pub> 10 <deviceType> 1a <len> <ref>.
func (c CompanionIdentity) Marshal() []byte {
	b, err := marshalOpts.Marshal(&waproto.CompanionEphemeralIdentity{
		PublicKey:  c.PublicKey.Bytes(),
		DeviceType: waproto.DeviceProps_PlatformType(c.DeviceType).Enum(),
		Ref:        proto.String(c.Ref),
	})
	if err != nil {
		panic("passkey: marshal of a fixed message cannot fail: " + err.Error())
	}
	return b
}

// ParseCompanionIdentity reads a serialized CompanionEphemeralIdentity; the
// public key must be 32 bytes. A missing deviceType reads as 0.
func ParseCompanionIdentity(b []byte) (CompanionIdentity, error) {
	var m waproto.CompanionEphemeralIdentity
	if err := proto.Unmarshal(b, &m); err != nil {
		return CompanionIdentity{}, parseErr("companion ephemeral identity", "", err)
	}
	pub, err := keys.PublicKeyFromBytes(m.GetPublicKey())
	if err != nil {
		return CompanionIdentity{}, parseErr("companion ephemeral identity", "public key is not 32 bytes", nil)
	}
	return CompanionIdentity{PublicKey: pub, DeviceType: int32(m.GetDeviceType()), Ref: m.GetRef()}, nil
}

// Prologue is a ProloguePayload as received: the identity bytes verbatim
// (the commitment covers them, not a re-encoding), the identity they hold
// and the commitment.
type Prologue struct {
	IdentityBytes []byte
	Identity      CompanionIdentity
	Commitment    [32]byte
}

// MarshalPrologue builds ProloguePayload{1: identBytes, 2: {1: commitment}}:
// 0a <len> <identBytes> 12 22 0a 20 <commitment>.
func MarshalPrologue(identBytes []byte, commitment [32]byte) []byte {
	b, err := marshalOpts.Marshal(&waproto.ProloguePayload{
		CompanionEphemeralIdentity: identBytes,
		Commitment:                 &waproto.CompanionCommitment{Hash: commitment[:]},
	})
	if err != nil {
		panic("passkey: marshal of a fixed message cannot fail: " + err.Error())
	}
	return b
}

// ParsePrologue reads a ProloguePayload: a parsable identity and a 32-byte
// commitment are required.
func ParsePrologue(b []byte) (Prologue, error) {
	var m waproto.ProloguePayload
	if err := proto.Unmarshal(b, &m); err != nil {
		return Prologue{}, parseErr("prologue payload", "", err)
	}
	if m.CompanionEphemeralIdentity == nil {
		return Prologue{}, parseErr("prologue payload", "no companion ephemeral identity", nil)
	}
	id, err := ParseCompanionIdentity(m.CompanionEphemeralIdentity)
	if err != nil {
		return Prologue{}, err
	}
	h := m.GetCommitment().GetHash()
	if len(h) != 32 {
		return Prologue{}, parseErr("prologue payload", "commitment is not 32 bytes", nil)
	}
	return Prologue{IdentityBytes: m.CompanionEphemeralIdentity, Identity: id, Commitment: [32]byte(h)}, nil
}

// PrimaryIdentity is PrimaryEphemeralIdentity: the phone's ephemeral key
// and nonce, 32 bytes each.
type PrimaryIdentity struct {
	PublicKey keys.PublicKey
	Nonce     [NonceSize]byte
}

// Marshal serializes it: 0a 20 <pub> 12 20 <nonce>.
func (p PrimaryIdentity) Marshal() []byte {
	b, err := marshalOpts.Marshal(&waproto.PrimaryEphemeralIdentity{PublicKey: p.PublicKey.Bytes(), Nonce: p.Nonce[:]})
	if err != nil {
		panic("passkey: marshal of a fixed message cannot fail: " + err.Error())
	}
	return b
}

// ParsePrimaryIdentity reads a PrimaryEphemeralIdentity; both fields must
// be exactly 32 bytes (PASSKEY.md §4.4).
func ParsePrimaryIdentity(b []byte) (PrimaryIdentity, error) {
	var m waproto.PrimaryEphemeralIdentity
	if err := proto.Unmarshal(b, &m); err != nil {
		return PrimaryIdentity{}, parseErr("primary ephemeral identity", "", err)
	}
	pub, err := keys.PublicKeyFromBytes(m.GetPublicKey())
	if err != nil {
		return PrimaryIdentity{}, parseErr("primary ephemeral identity", "public key is not 32 bytes", nil)
	}
	if len(m.GetNonce()) != NonceSize {
		return PrimaryIdentity{}, parseErr("primary ephemeral identity", "nonce is not 32 bytes", nil)
	}
	return PrimaryIdentity{PublicKey: pub, Nonce: [NonceSize]byte(m.GetNonce())}, nil
}

// PairingRequest is what the companion seals for the phone: its Noise
// static key, its identity key (no 05 prefix) and the NEW adv secret that
// keys the pair-success HMAC.
type PairingRequest struct {
	CompanionNoise    keys.PublicKey
	CompanionIdentity keys.PublicKey
	AdvSecret         [32]byte
}

// GoString keeps the adv secret out of %#v.
func (r PairingRequest) GoString() string {
	return "passkey.PairingRequest{CompanionNoise:" + r.CompanionNoise.String() + ", CompanionIdentity:" + r.CompanionIdentity.String() + ", AdvSecret:redacted}"
}

// Marshal serializes PairingRequest{1 noise, 2 identity, 3 adv secret}.
func (r PairingRequest) Marshal() []byte {
	b, err := marshalOpts.Marshal(&waproto.PairingRequest{
		CompanionPublicKey: r.CompanionNoise.Bytes(), CompanionIdentityKey: r.CompanionIdentity.Bytes(), AdvSecret: r.AdvSecret[:],
	})
	if err != nil {
		panic("passkey: marshal of a fixed message cannot fail: " + err.Error())
	}
	return b
}

// ParsePairingRequest reads a serialized PairingRequest; every field must
// be 32 bytes.
func ParsePairingRequest(b []byte) (PairingRequest, error) {
	var m waproto.PairingRequest
	if err := proto.Unmarshal(b, &m); err != nil {
		return PairingRequest{}, parseErr("pairing request", "", err)
	}
	n, err1 := keys.PublicKeyFromBytes(m.GetCompanionPublicKey())
	id, err2 := keys.PublicKeyFromBytes(m.GetCompanionIdentityKey())
	if err1 != nil || err2 != nil || len(m.GetAdvSecret()) != 32 {
		return PairingRequest{}, parseErr("pairing request", "a field is not 32 bytes", nil)
	}
	return PairingRequest{CompanionNoise: n, CompanionIdentity: id, AdvSecret: [32]byte(m.GetAdvSecret())}, nil
}

// SealPairingRequest encrypts req with AES-256-GCM(key, iv, no AAD) and
// returns the serialized EncryptedPairingRequest{1 ciphertext‖tag, 2 iv}.
func SealPairingRequest(key [32]byte, iv [IVSize]byte, req PairingRequest) []byte {
	ct := gcm(key).Seal(nil, iv[:], req.Marshal(), nil)
	b, err := marshalOpts.Marshal(&waproto.EncryptedPairingRequest{EncryptedPayload: ct, IV: iv[:]})
	if err != nil {
		panic("passkey: marshal of a fixed message cannot fail: " + err.Error())
	}
	return b
}

// ParseEncryptedPairingRequest splits a serialized EncryptedPairingRequest
// into its ciphertext‖tag and 12-byte IV.
func ParseEncryptedPairingRequest(b []byte) (ciphertext []byte, iv [IVSize]byte, err error) {
	var m waproto.EncryptedPairingRequest
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, iv, parseErr("encrypted pairing request", "", err)
	}
	if len(m.GetIV()) != IVSize {
		return nil, iv, parseErr("encrypted pairing request", "iv is not 12 bytes", nil)
	}
	if len(m.GetEncryptedPayload()) < 16 {
		return nil, iv, parseErr("encrypted pairing request", "payload shorter than the tag", nil)
	}
	return m.GetEncryptedPayload(), [IVSize]byte(m.GetIV()), nil
}

// OpenPairingRequest is the phone's side: it decrypts and parses a
// serialized EncryptedPairingRequest. A wrong key or tampering is
// ErrDecrypt.
func OpenPairingRequest(key [32]byte, b []byte) (PairingRequest, error) {
	ct, iv, err := ParseEncryptedPairingRequest(b)
	if err != nil {
		return PairingRequest{}, err
	}
	plain, err := gcm(key).Open(nil, iv[:], ct, nil)
	if err != nil {
		return PairingRequest{}, ErrDecrypt
	}
	return ParsePairingRequest(plain)
}

func gcm(key [32]byte) cipher.AEAD {
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		panic("passkey: aes with a 32-byte key cannot fail")
	}
	a, err := cipher.NewGCM(blk)
	if err != nil {
		panic("passkey: gcm cannot fail")
	}
	return a
}
