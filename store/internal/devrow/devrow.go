// Package devrow is the device-row codec and the at-rest envelope shared
// by the SQL stores (store/sqlite, store/postgres): one Go row per devices
// row, nullable columns as pointers or nil slices, secrets sealed with a
// seal.Cipher under associated data that names their row and column.
// Errors use the calling store's vocabulary (Errors), so each store keeps
// its own sentinels and message prefix.
package devrow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/seal"
)

// Row is one devices Row in Go types. Nullable columns are pointers or nil
// slices: a zero key, zero time or absent blob is NULL, so it loads back as
// the zero value instead of a clamped scalar or the Unix epoch.
type Row struct {
	NoisePub, NoisePriv       []byte
	IdentityPub, IdentityPriv []byte
	SpkID                     int64
	SpkPub, SpkPriv, SpkSig   []byte
	RegistrationID            int64
	AdvSecret                 []byte
	ID, LID                   JIDCols
	Account                   []byte
	PrimaryIdentity           []byte
	BusinessName, PushName    string
	Platform                  string
	LinkedAt                  *int64
	ClockOffset               int64
	ServerURL                 string
	ServerRoot                []byte
	NextPreKeyID              int64
	CreatedAt                 *int64
	Unconfirmed               bool
	ServerChain               []byte // chain codec (ChainV1), sealed when a cipher is set
	WebVersion                string
	WebVersionFetchedAt       *int64
}

// JIDCols are the five columns that hold one JID.
type JIDCols struct {
	User                      string
	Agent, Device, Integrator int64
	Server                    string
}

// Columns lists the devices columns in the order of Row.Args and
// Row.Dest.
const Columns = `noise_pub, noise_priv, identity_pub, identity_priv,
	spk_id, spk_pub, spk_priv, spk_sig, registration_id, adv_secret,
	jid_user, jid_agent, jid_device, jid_integrator, jid_server,
	lid_user, lid_agent, lid_device, lid_integrator, lid_server,
	account, primary_identity, business_name, push_name, platform,
	linked_at, clock_offset, server_url, server_root, next_pre_key_id, created_at,
	unconfirmed, server_chain, web_version, web_version_fetched_at`

const NumColumns = 35

func (r *Row) Args() []any {
	return []any{
		r.NoisePub, blob(r.NoisePriv), blob(r.IdentityPub), blob(r.IdentityPriv),
		r.SpkID, blob(r.SpkPub), blob(r.SpkPriv), blob(r.SpkSig), r.RegistrationID, blob(r.AdvSecret),
		r.ID.User, r.ID.Agent, r.ID.Device, r.ID.Integrator, r.ID.Server,
		r.LID.User, r.LID.Agent, r.LID.Device, r.LID.Integrator, r.LID.Server,
		blob(r.Account), blob(r.PrimaryIdentity), r.BusinessName, r.PushName, r.Platform,
		r.LinkedAt, r.ClockOffset, r.ServerURL, blob(r.ServerRoot), r.NextPreKeyID, r.CreatedAt,
		r.Unconfirmed, blob(r.ServerChain), r.WebVersion, r.WebVersionFetchedAt,
	}
}

func (r *Row) Dest() []any {
	return []any{
		&r.NoisePub, &r.NoisePriv, &r.IdentityPub, &r.IdentityPriv,
		&r.SpkID, &r.SpkPub, &r.SpkPriv, &r.SpkSig, &r.RegistrationID, &r.AdvSecret,
		&r.ID.User, &r.ID.Agent, &r.ID.Device, &r.ID.Integrator, &r.ID.Server,
		&r.LID.User, &r.LID.Agent, &r.LID.Device, &r.LID.Integrator, &r.LID.Server,
		&r.Account, &r.PrimaryIdentity, &r.BusinessName, &r.PushName, &r.Platform,
		&r.LinkedAt, &r.ClockOffset, &r.ServerURL, &r.ServerRoot, &r.NextPreKeyID, &r.CreatedAt,
		&r.Unconfirmed, &r.ServerChain, &r.WebVersion, &r.WebVersionFetchedAt,
	}
}

// blob makes a nil slice an untyped nil, which every driver binds as NULL.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos stores t as Unix nanoseconds, NULL for the zero time. Times outside
// int64 nanoseconds (years before 1678 or after 2262) are refused rather
// than silently wrapped.
func nanos(e *Errors, field string, t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, fmt.Errorf("%w: %s %v is out of range", e.Invalid, field, t)
	}
	n := t.UnixNano()
	return &n, nil
}

func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

func pubBytes(p keys.PublicKey) []byte {
	if p.IsZero() {
		return nil
	}
	return p.Bytes()
}

func (s Secrets) privBytes(col string, owner []byte, p keys.PrivateKey) ([]byte, error) {
	if p.IsZero() {
		return nil, nil
	}
	return s.Seal(col, owner, 0, p.Bytes())
}

func ToJIDCols(j jid.JID) JIDCols {
	return JIDCols{User: j.User, Agent: int64(j.RawAgent), Device: int64(j.Device), Integrator: int64(j.Integrator), Server: j.Server}
}

// Encode turns d into a Row, refusing what cannot be stored, and
// seals its Secrets.
func Encode(d *store.Device, sec Secrets) (*Row, error) {
	e := sec.errs()
	if d == nil {
		return nil, fmt.Errorf("%w: nil device", e.Invalid)
	}
	if d.NoiseKey.Public.IsZero() {
		return nil, fmt.Errorf("%w: device has no noise key", e.Invalid)
	}
	linked, err := nanos(e, "LinkedAt", d.LinkedAt)
	if err != nil {
		return nil, err
	}
	created, err := nanos(e, "CreatedAt", d.CreatedAt)
	if err != nil {
		return nil, err
	}
	fetched, err := nanos(e, "WebVersionFetchedAt", d.WebVersionFetchedAt)
	if err != nil {
		return nil, err
	}
	r := &Row{
		NoisePub:            d.NoiseKey.Public.Bytes(),
		IdentityPub:         pubBytes(d.IdentityKey.Public),
		SpkID:               int64(d.SignedPreKey.ID),
		SpkPub:              pubBytes(d.SignedPreKey.Public),
		RegistrationID:      int64(d.RegistrationID),
		ID:                  ToJIDCols(d.ID),
		LID:                 ToJIDCols(d.LID),
		Account:             bytes.Clone(d.Account),
		PrimaryIdentity:     pubBytes(d.PrimaryIdentity),
		BusinessName:        d.BusinessName,
		PushName:            d.PushName,
		Platform:            d.Platform,
		LinkedAt:            linked,
		ClockOffset:         int64(d.ClockOffset),
		ServerURL:           d.ServerURL,
		ServerRoot:          pubBytes(d.ServerRoot),
		NextPreKeyID:        int64(d.NextPreKeyID),
		CreatedAt:           created,
		Unconfirmed:         d.Unconfirmed,
		WebVersion:          d.WebVersion,
		WebVersionFetchedAt: fetched,
	}
	if !d.ServerChain.IsZero() {
		if r.ServerChain, err = sec.Seal("devices.server_chain", r.NoisePub, 0, EncodeChain(d.ServerChain)); err != nil {
			return nil, err
		}
	}
	if d.SignedPreKey.Signature != ([keys.SignatureSize]byte{}) {
		r.SpkSig = bytes.Clone(d.SignedPreKey.Signature[:])
	}
	if r.NoisePriv, err = sec.privBytes("devices.noise_priv", r.NoisePub, d.NoiseKey.Private); err != nil {
		return nil, err
	}
	if r.IdentityPriv, err = sec.privBytes("devices.identity_priv", r.NoisePub, d.IdentityKey.Private); err != nil {
		return nil, err
	}
	if r.SpkPriv, err = sec.privBytes("devices.spk_priv", r.NoisePub, d.SignedPreKey.Private); err != nil {
		return nil, err
	}
	if d.AdvSecret != ([32]byte{}) {
		if r.AdvSecret, err = sec.Seal("devices.adv_secret", r.NoisePub, 0, bytes.Clone(d.AdvSecret[:])); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Decode turns a loaded Row back into a Device, opening its Secrets.
// Errors name the column, never its content.
func (r *Row) Decode(sec Secrets) (*store.Device, error) {
	e := sec.errs()
	d := &store.Device{
		BusinessName:        r.BusinessName,
		PushName:            r.PushName,
		Platform:            r.Platform,
		LinkedAt:            fromNanos(r.LinkedAt),
		ClockOffset:         time.Duration(r.ClockOffset),
		ServerURL:           r.ServerURL,
		CreatedAt:           fromNanos(r.CreatedAt),
		Unconfirmed:         r.Unconfirmed,
		WebVersion:          r.WebVersion,
		WebVersionFetchedAt: fromNanos(r.WebVersionFetchedAt),
	}
	var err error
	if len(r.NoisePub) != keys.Size {
		return nil, fmt.Errorf("%w: devices.noise_pub holds %d bytes", e.Corrupt, len(r.NoisePub))
	}
	owner := r.NoisePub
	if d.NoiseKey, err = sec.KeyPair("devices.noise_pub", "devices.noise_priv", owner, 0, r.NoisePub, r.NoisePriv); err != nil {
		return nil, err
	}
	if d.IdentityKey, err = sec.KeyPair("devices.identity_pub", "devices.identity_priv", owner, 0, r.IdentityPub, r.IdentityPriv); err != nil {
		return nil, err
	}
	if d.SignedPreKey.KeyPair, err = sec.KeyPair("devices.spk_pub", "devices.spk_priv", owner, 0, r.SpkPub, r.SpkPriv); err != nil {
		return nil, err
	}
	if d.SignedPreKey.ID, err = u32(e, "spk_id", r.SpkID, keys.MaxPreKeyID); err != nil {
		return nil, err
	}
	if len(r.SpkSig) != 0 {
		if len(r.SpkSig) != keys.SignatureSize {
			return nil, fmt.Errorf("%w: spk_sig holds %d bytes", e.Corrupt, len(r.SpkSig))
		}
		copy(d.SignedPreKey.Signature[:], r.SpkSig)
	}
	if d.RegistrationID, err = u32(e, "registration_id", r.RegistrationID, math.MaxUint32); err != nil {
		return nil, err
	}
	if len(r.AdvSecret) != 0 {
		b, _, err := sec.Open("devices.adv_secret", owner, 0, r.AdvSecret)
		if err != nil {
			return nil, err
		}
		copy(d.AdvSecret[:], b)
	}
	if d.ID, err = r.ID.decode(e, "jid"); err != nil {
		return nil, err
	}
	if d.LID, err = r.LID.decode(e, "lid"); err != nil {
		return nil, err
	}
	if r.Account != nil {
		d.Account = bytes.Clone(r.Account)
	}
	if d.PrimaryIdentity, err = pubKey(e, "primary_identity", r.PrimaryIdentity); err != nil {
		return nil, err
	}
	if d.ServerRoot, err = pubKey(e, "server_root", r.ServerRoot); err != nil {
		return nil, err
	}
	if d.NextPreKeyID, err = u32(e, "next_pre_key_id", r.NextPreKeyID, math.MaxUint32); err != nil {
		return nil, err
	}
	if len(r.ServerChain) != 0 {
		b, err := sec.OpenBlob("devices.server_chain", owner, 0, r.ServerChain, ChainV1)
		if err != nil {
			return nil, err
		}
		if d.ServerChain, err = DecodeChain(b); err != nil {
			return nil, fmt.Errorf("%w: devices.server_chain: %w", e.Corrupt, err)
		}
	}
	return d, nil
}

func (c JIDCols) decode(e *Errors, prefix string) (jid.JID, error) {
	if c.Agent < 0 || c.Agent > math.MaxUint8 || c.Device < 0 || c.Device > math.MaxUint16 || c.Integrator < 0 || c.Integrator > math.MaxUint16 {
		return jid.JID{}, fmt.Errorf("%w: %s_agent, %s_device or %s_integrator out of range", e.Corrupt, prefix, prefix, prefix)
	}
	return jid.JID{User: c.User, RawAgent: uint8(c.Agent), Device: uint16(c.Device), Integrator: uint16(c.Integrator), Server: c.Server}, nil
}

func u32(e *Errors, col string, v int64, limit uint32) (uint32, error) {
	if v < 0 || v > int64(limit) {
		return 0, fmt.Errorf("%w: %s out of range", e.Corrupt, col)
	}
	return uint32(v), nil
}

func pubKey(e *Errors, col string, b []byte) (keys.PublicKey, error) {
	if len(b) == 0 {
		return keys.PublicKey{}, nil
	}
	p, err := keys.PublicKeyFromBytes(b)
	if err != nil {
		return keys.PublicKey{}, fmt.Errorf("%w: %s holds %d bytes", e.Corrupt, col, len(b))
	}
	return p, nil
}

// keyPair rebuilds a pair from its stored halves. The public half is kept
// as stored rather than recomputed: it costs a scalar multiplication per
// key and the halves were written together.
func (s Secrets) KeyPair(pubCol, privCol string, owner []byte, id uint32, pub, priv []byte) (keys.KeyPair, error) {
	e := s.errs()
	var kp keys.KeyPair
	var err error
	if kp.Public, err = pubKey(s.errs(), pubCol, pub); err != nil {
		return keys.KeyPair{}, err
	}
	if len(priv) == 0 {
		return kp, nil
	}
	b, _, err := s.Open(privCol, owner, id, priv)
	if err != nil {
		return keys.KeyPair{}, err
	}
	if kp.Private, err = keys.PrivateKeyFromBytes(b); err != nil {
		return keys.KeyPair{}, fmt.Errorf("%w: %s", e.Corrupt, privCol)
	}
	return kp, nil
}

// SealedV1 starts a sealed column: the envelope is
//
//	0x01 || Cipher.Seal(secret, aad)
//
// and a column in the clear is exactly 32 bytes, so the two never collide
// (a sealed value carries at least a nonce or a tag on top of the 32
// bytes). The version byte leaves room for another envelope later.
const SealedV1 = 0x01

// Secrets seals and opens the secret columns of one store.
type Secrets struct {
	C seal.Cipher // nil: secrets are stored in the clear
	E *Errors     // the store's error vocabulary; nil: generic errors
}

// Errors is a store's error vocabulary: the sentinels its callers test
// with errors.Is, and the package name that prefixes its messages.
type Errors struct {
	Pkg      string
	Invalid  error // a record that cannot be stored
	Corrupt  error // a stored record that does not decode
	NoCipher error // a sealed column in a store opened without a cipher
	Decrypt  error // a sealed column the cipher cannot open
}

var generic = &Errors{
	Pkg:      "store",
	Invalid:  errors.New("store: invalid record"),
	Corrupt:  errors.New("store: corrupt record"),
	NoCipher: errors.New("store: secrets are encrypted; open the store with a cipher"),
	Decrypt:  seal.ErrDecrypt,
}

func (s Secrets) errs() *Errors {
	if s.E == nil {
		return generic
	}
	return s.E
}

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

func (s Secrets) Seal(col string, owner []byte, id uint32, secret []byte) ([]byte, error) {
	e := s.errs()
	if s.C == nil {
		return secret, nil
	}
	sealed, err := s.C.Seal(secret, aad(col, owner, id))
	if err != nil {
		return nil, fmt.Errorf("%s: sealing %s: %w", e.Pkg, col, err)
	}
	return append([]byte{SealedV1}, sealed...), nil
}

// open returns the 32-byte secret held in b, unsealing it if needed;
// sealed reports whether it was.
func (s Secrets) Open(col string, owner []byte, id uint32, b []byte) (secret []byte, sealed bool, err error) {
	e := s.errs()
	if len(b) == keys.Size {
		return b, false, nil
	}
	if len(b) < keys.Size || b[0] != SealedV1 {
		return nil, false, fmt.Errorf("%w: %s holds %d bytes", e.Corrupt, col, len(b))
	}
	if s.C == nil {
		return nil, true, fmt.Errorf("%w (column %s)", e.NoCipher, col)
	}
	pt, err := s.C.Open(b[1:], aad(col, owner, id))
	if errors.Is(err, seal.ErrDecrypt) || errors.Is(err, e.Decrypt) {
		return nil, true, fmt.Errorf("%s: %w (column %s)", e.Pkg, e.Decrypt, col)
	}
	if err != nil {
		// A custom Cipher (a KMS, say) may fail for its own reasons.
		return nil, true, fmt.Errorf("%s: opening %s: %w", e.Pkg, col, err)
	}
	if len(pt) != keys.Size {
		return nil, true, fmt.Errorf("%w: %s unseals to %d bytes", e.Corrupt, col, len(pt))
	}
	return pt, true, nil
}
