// Package store defines how walink persists companion sessions: the Device
// record (keys, identity, pairing results) and the Store interface that the
// SQLite and PostgreSQL stores implement. Implementations must write every
// multi-row change in one transaction, so a crash never leaves half a
// session. storetest holds the conformance suite every implementation runs.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
)

// ErrNotFound is returned when a device or pre-key does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrFenced is returned by a write made through a fenced view of a store
// (one limited to the holder of a lease, as several `walink serve`
// replicas use) once that lease is no longer held: it expired, was
// released, or another process took it over. The write did not happen.
var ErrFenced = errors.New("store: write fenced off: lease no longer held")

// Device is one companion device: its long-term keys, made before the first
// connect, and what pairing taught it. A Device with an empty ID is not
// paired yet.
type Device struct {
	// Keys, generated once per device before it first connects.
	NoiseKey       keys.KeyPair // Noise static key; identifies the device to the server
	IdentityKey    keys.KeyPair // Signal identity key
	SignedPreKey   keys.SignedPreKey
	RegistrationID uint32
	AdvSecret      [32]byte // rotated by companion_reg_refresh; replaced by pair-code pairing

	// Set by pairing; zero before.
	ID              jid.JID        // own AD JID, phone:device@s.whatsapp.net
	LID             jid.JID        // own LID, lid:device@lid
	Account         []byte         // serialized ADVSignedDeviceIdentity (account key and both signatures)
	PrimaryIdentity keys.PublicKey // the phone's account identity key (accountSignatureKey)
	BusinessName    string
	PushName        string
	Platform        string // primary's platform, e.g. "android"
	LinkedAt        time.Time
	ClockOffset     time.Duration // server time minus local time at pairing

	// Unconfirmed: the pairing reply (pair-device-sign) was sent or is
	// about to be, and the server has not confirmed the link yet (no 515
	// restart after it, no successful login). The client stores the whole
	// session with Unconfirmed set before replying, so a crash between the
	// two cannot lose a link the server made; the 515 or the first login
	// clears it, and a login refused as logged out deletes the record
	// silently (it never was a session).
	Unconfirmed bool

	// A non-default server this device was linked against ("" = WhatsApp),
	// remembered so later commands find it without flags.
	ServerURL  string
	ServerRoot keys.PublicKey // zero = WhatsApp's real root

	// Pre-key bookkeeping.
	NextPreKeyID uint32 // id the next generated pre-key gets (starts at 1)

	// Reconnect state (CHANGES-2026 §7, §8). Zero values mean "nothing
	// learned yet": the next connect runs a full XX handshake with the
	// built-in client version. Stores written before these fields existed
	// load them as zero.
	//
	// ServerChain is what the server's certificate chain certified in the
	// last full (XX or XXfallback) handshake; a reconnect resumes with
	// Noise IK to its leaf key while both certificates are valid.
	ServerChain ServerChain
	// WebVersion is the WhatsApp Web client version last fetched for this
	// device ("2.3000.N"), and WebVersionFetchedAt when it was fetched.
	WebVersion          string
	WebVersionFetchedAt time.Time

	CreatedAt time.Time
}

// ServerChain is a verified server certificate chain as a client keeps it
// for a Noise IK resume (CHANGES-2026 §7): for the intermediate and the
// leaf certificate, the key, the serial and the validity window. The
// windows are whole unix seconds, as on the wire. The zero value (no leaf
// key) means no chain is stored. SQL stores seal it like the other secrets
// when encryption at rest is on.
type ServerChain struct {
	IntermediateSerial    uint32
	IntermediateKey       keys.PublicKey
	IntermediateNotBefore time.Time
	IntermediateNotAfter  time.Time
	LeafSerial            uint32
	LeafKey               keys.PublicKey // the server's static key: IK's rs
	LeafNotBefore         time.Time
	LeafNotAfter          time.Time
}

// IsZero reports whether no chain is stored.
func (c ServerChain) IsZero() bool { return c.LeafKey.IsZero() }

// Paired reports whether the device completed pairing on its side: it has
// its own JID and the keys to log in with. An Unconfirmed device is Paired
// but may not be linked; see Linked.
func (d *Device) Paired() bool { return d != nil && !d.ID.IsEmpty() }

// Linked reports whether the device is paired and the server confirmed the
// link (Paired and not Unconfirmed): what a user should be shown as linked.
func (d *Device) Linked() bool { return d.Paired() && !d.Unconfirmed }

// Store persists devices. All methods are safe for concurrent use. Devices
// are addressed by their noise public key, which exists before pairing;
// DeviceByJID finds a paired one by its JID.
type Store interface {
	// Devices returns every device, paired or not, oldest first.
	Devices(ctx context.Context) ([]*Device, error)
	// Device returns the device with this noise public key, or ErrNotFound.
	Device(ctx context.Context, noisePub keys.PublicKey) (*Device, error)
	// DeviceByJID returns the paired device with this JID (device part
	// significant), or ErrNotFound.
	DeviceByJID(ctx context.Context, id jid.JID) (*Device, error)
	// PutDevice inserts or replaces the whole record, and the LID↔phone
	// mapping when both ID and LID are set, in one transaction.
	PutDevice(ctx context.Context, d *Device) error
	// DeleteDevice removes the device and everything that belongs to it
	// (pre-keys, mappings) in one transaction. Deleting an absent device is
	// not an error.
	DeleteDevice(ctx context.Context, noisePub keys.PublicKey) error
	// PutPreKeys stores pre-keys (private halves included) for the device
	// and sets its NextPreKeyID to next, in one transaction.
	PutPreKeys(ctx context.Context, noisePub keys.PublicKey, pks []keys.PreKey, next uint32) error
	// PreKey returns one stored pre-key, or ErrNotFound.
	PreKey(ctx context.Context, noisePub keys.PublicKey, id uint32) (keys.PreKey, error)
	// PreKeyCount returns how many pre-keys are stored for the device.
	PreKeyCount(ctx context.Context, noisePub keys.PublicKey) (int, error)
	// LIDForPhone returns the LID user mapped to a phone-number user.
	LIDForPhone(ctx context.Context, phone jid.JID) (jid.JID, error)
	// Close releases the store.
	Close() error
}
