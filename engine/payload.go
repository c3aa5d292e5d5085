package engine

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/waproto"
)

// Version is a WhatsApp Web client version "primary.secondary.tertiary".
type Version [3]uint32

// ErrBadVersion is returned by ParseVersion.
var ErrBadVersion = errors.New("engine: client version must look like 2.3000.1031080782")

// ParseVersion parses "2.3000.N".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
	}
	var v Version
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
		}
		v[i] = uint32(n)
	}
	return v, nil
}

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
}

// BuildHash is MD5 of the version string (PROTOCOL.md §6.2 buildHash).
func (v Version) BuildHash() [16]byte { return md5.Sum([]byte(v.String())) }

// PayloadConfig is what the ClientPayloads say about the client.
type PayloadConfig struct {
	Version      Version
	OSName       string                           // DeviceProps.os: the name shown on the phone
	PlatformType waproto.DeviceProps_PlatformType // DeviceProps.platformType
	PushName     string                           // optional
}

// base fills the fields every payload carries (PROTOCOL.md §6.1, §6.3).
func (pc PayloadConfig) base() *waproto.ClientPayload {
	p := &waproto.ClientPayload{
		UserAgent: &waproto.ClientPayload_UserAgent{
			Platform: waproto.ClientPayload_UserAgent_WEB.Enum(),
			AppVersion: &waproto.ClientPayload_UserAgent_AppVersion{
				Primary: proto.Uint32(pc.Version[0]), Secondary: proto.Uint32(pc.Version[1]), Tertiary: proto.Uint32(pc.Version[2]),
			},
			Mcc:                         proto.String("000"),
			Mnc:                         proto.String("000"),
			OsVersion:                   proto.String("0.1"),
			Manufacturer:                proto.String(""),
			Device:                      proto.String("Desktop"),
			OsBuildNumber:               proto.String("0.1"),
			ReleaseChannel:              waproto.ClientPayload_UserAgent_RELEASE.Enum(),
			LocaleLanguageIso6391:       proto.String("en"),
			LocaleCountryIso31661Alpha2: proto.String("US"),
		},
		WebInfo: &waproto.ClientPayload_WebInfo{
			WebSubPlatform: waproto.ClientPayload_WebInfo_WEB_BROWSER.Enum(),
		},
		ConnectType:   waproto.ClientPayload_WIFI_UNKNOWN.Enum(),
		ConnectReason: waproto.ClientPayload_USER_ACTIVATED.Enum(),
	}
	if pc.PushName != "" {
		p.PushName = proto.String(pc.PushName)
	}
	return p
}

// DeviceProps is the registration's DeviceProps: what the phone lists
// under "Linked devices".
func (pc PayloadConfig) DeviceProps() *waproto.DeviceProps {
	t := true
	return &waproto.DeviceProps{
		Os:           proto.String(pc.OSName),
		Version:      &waproto.DeviceProps_AppVersion{Primary: proto.Uint32(0), Secondary: proto.Uint32(1), Tertiary: proto.Uint32(0)},
		PlatformType: pc.PlatformType.Enum(),
		// No history sync is wanted by a linking library; the flags say
		// which payload shapes we could read, as current clients do.
		RequireFullSync: proto.Bool(false),
		HistorySyncConfig: &waproto.DeviceProps_HistorySyncConfig{
			StorageQuotaMb:                           proto.Uint32(10240),
			InlineInitialPayloadInE2EeMsg:            &t,
			SupportCallLogHistory:                    proto.Bool(false),
			SupportBotUserAgentChatHistory:           &t,
			SupportCagReactionsAndPolls:              &t,
			SupportBizHostedMsg:                      &t,
			SupportRecentSyncChunkMessageCountTuning: &t,
			SupportHostedGroupMsg:                    &t,
			SupportFbidBotChatHistory:                &t,
			SupportMessageAssociation:                &t,
			SupportGroupHistory:                      proto.Bool(false),
		},
	}
}

// RegistrationPayload is the payload of a device that is not paired yet
// (PROTOCOL.md §6.2): passive false, pull false, devicePairingData.
func RegistrationPayload(d *store.Device, pc PayloadConfig) ([]byte, error) {
	props, err := proto.Marshal(pc.DeviceProps())
	if err != nil {
		return nil, fmt.Errorf("engine: encoding device props: %w", err)
	}
	bh := pc.Version.BuildHash()
	p := pc.base()
	p.Passive = proto.Bool(false)
	p.Pull = proto.Bool(false)
	p.DevicePairingData = &waproto.ClientPayload_DevicePairingRegistrationData{
		ERegid:      binary.BigEndian.AppendUint32(nil, d.RegistrationID),
		EKeytype:    []byte{keys.DJBType},
		EIdent:      d.IdentityKey.Public.Bytes(),
		ESkeyID:     keys.PreKeyIDBytes(d.SignedPreKey.ID),
		ESkeyVal:    d.SignedPreKey.Public.Bytes(),
		ESkeySig:    d.SignedPreKey.Signature[:],
		BuildHash:   bh[:],
		DeviceProps: props,
	}
	b, err := proto.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("engine: encoding registration payload: %w", err)
	}
	return b, nil
}

// LoginPayload is the payload of a paired device (PROTOCOL.md §6.4, with
// CHANGES-2026.md §5: pull, lidDbMigrated, lc=1).
func LoginPayload(d *store.Device, pc PayloadConfig) ([]byte, error) {
	if !d.Paired() {
		return nil, errors.New("engine: login payload for an unpaired device")
	}
	user, err := strconv.ParseUint(d.ID.User, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("engine: own jid user %q is not a phone number: %w", d.ID.User, ErrMalformed)
	}
	p := pc.base()
	p.Username = proto.Uint64(user)
	p.Device = proto.Uint32(uint32(d.ID.Device))
	p.Passive = proto.Bool(true)
	p.Pull = proto.Bool(true)
	p.LidDbMigrated = proto.Bool(true)
	p.Lc = proto.Int32(1)
	b, err := proto.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("engine: encoding login payload: %w", err)
	}
	return b, nil
}
