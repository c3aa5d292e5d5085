package postgres

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// row is one devices row in Go types. Nullable columns are pointers or nil
// slices: a zero key, zero time or absent blob is NULL, so it loads back as
// the zero value instead of a clamped scalar or the Unix epoch.
type row struct {
	noisePub, noisePriv       []byte
	identityPub, identityPriv []byte
	spkID                     int64
	spkPub, spkPriv, spkSig   []byte
	registrationID            int64
	advSecret                 []byte
	id, lid                   jidCols
	account                   []byte
	primaryIdentity           []byte
	businessName, pushName    string
	platform                  string
	linkedAt                  *int64
	clockOffset               int64
	serverURL                 string
	serverRoot                []byte
	nextPreKeyID              int64
	createdAt                 *int64
}

type jidCols struct {
	user                      string
	agent, device, integrator int64
	server                    string
}

// deviceColumns lists the devices columns in the order of row.args and
// row.dest.
const deviceColumns = `noise_pub, noise_priv, identity_pub, identity_priv,
	spk_id, spk_pub, spk_priv, spk_sig, registration_id, adv_secret,
	jid_user, jid_agent, jid_device, jid_integrator, jid_server,
	lid_user, lid_agent, lid_device, lid_integrator, lid_server,
	account, primary_identity, business_name, push_name, platform,
	linked_at, clock_offset, server_url, server_root, next_pre_key_id, created_at`

const numDeviceColumns = 31

func (r *row) args() []any {
	return []any{
		r.noisePub, blob(r.noisePriv), blob(r.identityPub), blob(r.identityPriv),
		r.spkID, blob(r.spkPub), blob(r.spkPriv), blob(r.spkSig), r.registrationID, blob(r.advSecret),
		r.id.user, r.id.agent, r.id.device, r.id.integrator, r.id.server,
		r.lid.user, r.lid.agent, r.lid.device, r.lid.integrator, r.lid.server,
		blob(r.account), blob(r.primaryIdentity), r.businessName, r.pushName, r.platform,
		r.linkedAt, r.clockOffset, r.serverURL, blob(r.serverRoot), r.nextPreKeyID, r.createdAt,
	}
}

func (r *row) dest() []any {
	return []any{
		&r.noisePub, &r.noisePriv, &r.identityPub, &r.identityPriv,
		&r.spkID, &r.spkPub, &r.spkPriv, &r.spkSig, &r.registrationID, &r.advSecret,
		&r.id.user, &r.id.agent, &r.id.device, &r.id.integrator, &r.id.server,
		&r.lid.user, &r.lid.agent, &r.lid.device, &r.lid.integrator, &r.lid.server,
		&r.account, &r.primaryIdentity, &r.businessName, &r.pushName, &r.platform,
		&r.linkedAt, &r.clockOffset, &r.serverURL, &r.serverRoot, &r.nextPreKeyID, &r.createdAt,
	}
}

// blob makes a nil slice an untyped nil, which every driver binds as NULL.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// Secret columns (the *_priv columns, adv_secret and pre_keys.priv) pass
// through sealSecret on the way in and openSecret on the way out. Today they
// hold the raw 32 bytes. An at-rest cipher would return a longer envelope
// here (version byte, nonce, ciphertext, tag, with the row's noise key and
// column name as associated data so blobs cannot be swapped between rows);
// openSecret tells the two apart by length and version byte, so old rows
// stay readable and no schema change is needed.
func sealSecret(b []byte) []byte { return b }

func openSecret(col string, b []byte) ([]byte, error) {
	if len(b) != keys.Size {
		return nil, fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, col, len(b))
	}
	return b, nil
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos stores t as Unix nanoseconds, NULL for the zero time. Times outside
// int64 nanoseconds (years before 1678 or after 2262) are refused rather
// than silently wrapped.
func nanos(field string, t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, fmt.Errorf("%w: %s %v is out of range", ErrInvalid, field, t)
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

func privBytes(p keys.PrivateKey) []byte {
	if p.IsZero() {
		return nil
	}
	return sealSecret(p.Bytes())
}

func toJIDCols(j jid.JID) jidCols {
	return jidCols{user: j.User, agent: int64(j.RawAgent), device: int64(j.Device), integrator: int64(j.Integrator), server: j.Server}
}

// encodeDevice turns d into a row, refusing what cannot be stored.
func encodeDevice(d *store.Device) (*row, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: nil device", ErrInvalid)
	}
	if d.NoiseKey.Public.IsZero() {
		return nil, fmt.Errorf("%w: device has no noise key", ErrInvalid)
	}
	linked, err := nanos("LinkedAt", d.LinkedAt)
	if err != nil {
		return nil, err
	}
	created, err := nanos("CreatedAt", d.CreatedAt)
	if err != nil {
		return nil, err
	}
	r := &row{
		noisePub:        d.NoiseKey.Public.Bytes(),
		noisePriv:       privBytes(d.NoiseKey.Private),
		identityPub:     pubBytes(d.IdentityKey.Public),
		identityPriv:    privBytes(d.IdentityKey.Private),
		spkID:           int64(d.SignedPreKey.ID),
		spkPub:          pubBytes(d.SignedPreKey.Public),
		spkPriv:         privBytes(d.SignedPreKey.Private),
		registrationID:  int64(d.RegistrationID),
		id:              toJIDCols(d.ID),
		lid:             toJIDCols(d.LID),
		account:         bytes.Clone(d.Account),
		primaryIdentity: pubBytes(d.PrimaryIdentity),
		businessName:    d.BusinessName,
		pushName:        d.PushName,
		platform:        d.Platform,
		linkedAt:        linked,
		clockOffset:     int64(d.ClockOffset),
		serverURL:       d.ServerURL,
		serverRoot:      pubBytes(d.ServerRoot),
		nextPreKeyID:    int64(d.NextPreKeyID),
		createdAt:       created,
	}
	if d.SignedPreKey.Signature != ([keys.SignatureSize]byte{}) {
		r.spkSig = bytes.Clone(d.SignedPreKey.Signature[:])
	}
	if d.AdvSecret != ([32]byte{}) {
		r.advSecret = sealSecret(bytes.Clone(d.AdvSecret[:]))
	}
	return r, nil
}

// decodeDevice turns a loaded row back into a Device. Errors name the
// column, never its content.
func (r *row) decode() (*store.Device, error) {
	d := &store.Device{
		BusinessName: r.businessName,
		PushName:     r.pushName,
		Platform:     r.platform,
		LinkedAt:     fromNanos(r.linkedAt),
		ClockOffset:  time.Duration(r.clockOffset),
		ServerURL:    r.serverURL,
		CreatedAt:    fromNanos(r.createdAt),
	}
	var err error
	if d.NoiseKey, err = keyPair("noise", r.noisePub, r.noisePriv); err != nil {
		return nil, err
	}
	if d.NoiseKey.Public.IsZero() {
		return nil, fmt.Errorf("%w: noise_pub is empty", ErrCorrupt)
	}
	if d.IdentityKey, err = keyPair("identity", r.identityPub, r.identityPriv); err != nil {
		return nil, err
	}
	if d.SignedPreKey.KeyPair, err = keyPair("spk", r.spkPub, r.spkPriv); err != nil {
		return nil, err
	}
	if d.SignedPreKey.ID, err = u32("spk_id", r.spkID, keys.MaxPreKeyID); err != nil {
		return nil, err
	}
	if len(r.spkSig) != 0 {
		if len(r.spkSig) != keys.SignatureSize {
			return nil, fmt.Errorf("%w: spk_sig holds %d bytes", ErrCorrupt, len(r.spkSig))
		}
		copy(d.SignedPreKey.Signature[:], r.spkSig)
	}
	if d.RegistrationID, err = u32("registration_id", r.registrationID, math.MaxUint32); err != nil {
		return nil, err
	}
	if len(r.advSecret) != 0 {
		b, err := openSecret("adv_secret", r.advSecret)
		if err != nil {
			return nil, err
		}
		copy(d.AdvSecret[:], b)
	}
	if d.ID, err = r.id.decode("jid"); err != nil {
		return nil, err
	}
	if d.LID, err = r.lid.decode("lid"); err != nil {
		return nil, err
	}
	if r.account != nil {
		d.Account = bytes.Clone(r.account)
	}
	if d.PrimaryIdentity, err = pubKey("primary_identity", r.primaryIdentity); err != nil {
		return nil, err
	}
	if d.ServerRoot, err = pubKey("server_root", r.serverRoot); err != nil {
		return nil, err
	}
	if d.NextPreKeyID, err = u32("next_pre_key_id", r.nextPreKeyID, math.MaxUint32); err != nil {
		return nil, err
	}
	return d, nil
}

func (c jidCols) decode(prefix string) (jid.JID, error) {
	if c.agent < 0 || c.agent > math.MaxUint8 || c.device < 0 || c.device > math.MaxUint16 || c.integrator < 0 || c.integrator > math.MaxUint16 {
		return jid.JID{}, fmt.Errorf("%w: %s_agent, %s_device or %s_integrator out of range", ErrCorrupt, prefix, prefix, prefix)
	}
	return jid.JID{User: c.user, RawAgent: uint8(c.agent), Device: uint16(c.device), Integrator: uint16(c.integrator), Server: c.server}, nil
}

func u32(col string, v int64, limit uint32) (uint32, error) {
	if v < 0 || v > int64(limit) {
		return 0, fmt.Errorf("%w: %s out of range", ErrCorrupt, col)
	}
	return uint32(v), nil
}

func pubKey(col string, b []byte) (keys.PublicKey, error) {
	if len(b) == 0 {
		return keys.PublicKey{}, nil
	}
	p, err := keys.PublicKeyFromBytes(b)
	if err != nil {
		return keys.PublicKey{}, fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, col, len(b))
	}
	return p, nil
}

// keyPair rebuilds a pair from its stored halves. The public half is kept
// as stored rather than recomputed: it costs a scalar multiplication per
// key and the halves were written together.
func keyPair(prefix string, pub, priv []byte) (keys.KeyPair, error) {
	var kp keys.KeyPair
	var err error
	if kp.Public, err = pubKey(prefix+"_pub", pub); err != nil {
		return keys.KeyPair{}, err
	}
	if len(priv) == 0 {
		return kp, nil
	}
	b, err := openSecret(prefix+"_priv", priv)
	if err != nil {
		return keys.KeyPair{}, err
	}
	if kp.Private, err = keys.PrivateKeyFromBytes(b); err != nil {
		return keys.KeyPair{}, fmt.Errorf("%w: %s_priv", ErrCorrupt, prefix)
	}
	return kp, nil
}
