package sqlite

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
	unconfirmed               bool
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
	linked_at, clock_offset, server_url, server_root, next_pre_key_id, created_at,
	unconfirmed`

const numDeviceColumns = 32

func (r *row) args() []any {
	return []any{
		r.noisePub, blob(r.noisePriv), blob(r.identityPub), blob(r.identityPriv),
		r.spkID, blob(r.spkPub), blob(r.spkPriv), blob(r.spkSig), r.registrationID, blob(r.advSecret),
		r.id.user, r.id.agent, r.id.device, r.id.integrator, r.id.server,
		r.lid.user, r.lid.agent, r.lid.device, r.lid.integrator, r.lid.server,
		blob(r.account), blob(r.primaryIdentity), r.businessName, r.pushName, r.platform,
		r.linkedAt, r.clockOffset, r.serverURL, blob(r.serverRoot), r.nextPreKeyID, r.createdAt,
		r.unconfirmed,
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
		&r.unconfirmed,
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

func (s secrets) privBytes(col string, owner []byte, p keys.PrivateKey) ([]byte, error) {
	if p.IsZero() {
		return nil, nil
	}
	return s.seal(col, owner, 0, p.Bytes())
}

func toJIDCols(j jid.JID) jidCols {
	return jidCols{user: j.User, agent: int64(j.RawAgent), device: int64(j.Device), integrator: int64(j.Integrator), server: j.Server}
}

// encodeDevice turns d into a row, refusing what cannot be stored, and
// seals its secrets.
func encodeDevice(d *store.Device, sec secrets) (*row, error) {
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
		identityPub:     pubBytes(d.IdentityKey.Public),
		spkID:           int64(d.SignedPreKey.ID),
		spkPub:          pubBytes(d.SignedPreKey.Public),
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
		unconfirmed:     d.Unconfirmed,
	}
	if d.SignedPreKey.Signature != ([keys.SignatureSize]byte{}) {
		r.spkSig = bytes.Clone(d.SignedPreKey.Signature[:])
	}
	if r.noisePriv, err = sec.privBytes("devices.noise_priv", r.noisePub, d.NoiseKey.Private); err != nil {
		return nil, err
	}
	if r.identityPriv, err = sec.privBytes("devices.identity_priv", r.noisePub, d.IdentityKey.Private); err != nil {
		return nil, err
	}
	if r.spkPriv, err = sec.privBytes("devices.spk_priv", r.noisePub, d.SignedPreKey.Private); err != nil {
		return nil, err
	}
	if d.AdvSecret != ([32]byte{}) {
		if r.advSecret, err = sec.seal("devices.adv_secret", r.noisePub, 0, bytes.Clone(d.AdvSecret[:])); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// decode turns a loaded row back into a Device, opening its secrets.
// Errors name the column, never its content.
func (r *row) decode(sec secrets) (*store.Device, error) {
	d := &store.Device{
		BusinessName: r.businessName,
		PushName:     r.pushName,
		Platform:     r.platform,
		LinkedAt:     fromNanos(r.linkedAt),
		ClockOffset:  time.Duration(r.clockOffset),
		ServerURL:    r.serverURL,
		CreatedAt:    fromNanos(r.createdAt),
		Unconfirmed:  r.unconfirmed,
	}
	var err error
	if len(r.noisePub) != keys.Size {
		return nil, fmt.Errorf("%w: devices.noise_pub holds %d bytes", ErrCorrupt, len(r.noisePub))
	}
	owner := r.noisePub
	if d.NoiseKey, err = sec.keyPair("devices.noise_pub", "devices.noise_priv", owner, 0, r.noisePub, r.noisePriv); err != nil {
		return nil, err
	}
	if d.IdentityKey, err = sec.keyPair("devices.identity_pub", "devices.identity_priv", owner, 0, r.identityPub, r.identityPriv); err != nil {
		return nil, err
	}
	if d.SignedPreKey.KeyPair, err = sec.keyPair("devices.spk_pub", "devices.spk_priv", owner, 0, r.spkPub, r.spkPriv); err != nil {
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
		b, _, err := sec.open("devices.adv_secret", owner, 0, r.advSecret)
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
func (s secrets) keyPair(pubCol, privCol string, owner []byte, id uint32, pub, priv []byte) (keys.KeyPair, error) {
	var kp keys.KeyPair
	var err error
	if kp.Public, err = pubKey(pubCol, pub); err != nil {
		return keys.KeyPair{}, err
	}
	if len(priv) == 0 {
		return kp, nil
	}
	b, _, err := s.open(privCol, owner, id, priv)
	if err != nil {
		return keys.KeyPair{}, err
	}
	if kp.Private, err = keys.PrivateKeyFromBytes(b); err != nil {
		return keys.KeyPair{}, fmt.Errorf("%w: %s", ErrCorrupt, privCol)
	}
	return kp, nil
}
