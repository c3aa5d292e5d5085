package engine

import (
	"bytes"
	"encoding/hex"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/waproto"
)

func mustKey(t *testing.T, b []byte) keys.PublicKey {
	t.Helper()
	k, err := keys.PublicKeyFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRegistrationPayloadVector rebuilds the recorded registration payload
// from the public values it carries: everything but the signature (random
// per signing, so taken from the vector) must come out byte for byte.
func TestRegistrationPayloadVector(t *testing.T) {
	v := vectors.Load(t)
	raw, err := hex.DecodeString(vectors.Str(t, v, "noise_xx", "client_payload_registration"))
	if err != nil {
		t.Fatal(err)
	}
	var want waproto.ClientPayload
	if err := proto.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	pd := want.GetDevicePairingData()
	var d store.Device
	d.RegistrationID = uint32(pd.ERegid[0])<<24 | uint32(pd.ERegid[1])<<16 | uint32(pd.ERegid[2])<<8 | uint32(pd.ERegid[3])
	d.IdentityKey.Public = mustKey(t, pd.EIdent)
	d.SignedPreKey.ID = uint32(pd.ESkeyID[0])<<16 | uint32(pd.ESkeyID[1])<<8 | uint32(pd.ESkeyID[2])
	d.SignedPreKey.Public = mustKey(t, pd.ESkeyVal)
	copy(d.SignedPreKey.Signature[:], pd.ESkeySig)
	if !d.SignedPreKey.Verify(d.IdentityKey.Public) {
		t.Fatal("vector's signed pre-key does not verify")
	}

	var props waproto.DeviceProps
	if err := proto.Unmarshal(pd.DeviceProps, &props); err != nil {
		t.Fatal(err)
	}
	ua := want.GetUserAgent().GetAppVersion()
	pc := PayloadConfig{
		Version:      Version{ua.GetPrimary(), ua.GetSecondary(), ua.GetTertiary()},
		OSName:       props.GetOs(),
		PlatformType: props.GetPlatformType(),
	}
	got, err := RegistrationPayload(&d, pc)
	if err != nil {
		t.Fatal(err)
	}
	var gotMsg waproto.ClientPayload
	if err := proto.Unmarshal(got, &gotMsg); err != nil {
		t.Fatal(err)
	}
	// DeviceProps: compare decoded (our history flags may add fields the
	// recorded client did not set); everything else must be identical.
	var gotProps waproto.DeviceProps
	if err := proto.Unmarshal(gotMsg.GetDevicePairingData().GetDeviceProps(), &gotProps); err != nil {
		t.Fatal(err)
	}
	if gotProps.GetOs() != props.GetOs() || gotProps.GetPlatformType() != props.GetPlatformType() {
		t.Errorf("device props = %v, want %v", &gotProps, &props)
	}
	gotMsg.DevicePairingData.DeviceProps = nil
	want.DevicePairingData.DeviceProps = nil
	if !proto.Equal(&gotMsg, &want) {
		t.Errorf("registration payload\n got %v\nwant %v", &gotMsg, &want)
	}
	if h := pc.Version.BuildHash(); hex.EncodeToString(h[:]) != "c6779ee540c6f59ea0167c7c5db73d75" && pc.Version.String() == "2.3000.1031080782" {
		t.Errorf("build hash %x", h)
	}
}

func TestLoginPayload(t *testing.T) {
	d := &store.Device{ID: jid.NewAD("15551234567", 3, jid.DefaultUserServer)}
	b, err := LoginPayload(d, PayloadConfig{Version: Version{2, 3000, 1031080782}})
	if err != nil {
		t.Fatal(err)
	}
	var p waproto.ClientPayload
	if err := proto.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.GetUsername() != 15551234567 || p.GetDevice() != 3 || !p.GetPassive() || !p.GetPull() || !p.GetLidDbMigrated() || p.GetLc() != 1 || p.DevicePairingData != nil {
		t.Errorf("login payload %v", &p)
	}
	if _, err := LoginPayload(&store.Device{}, PayloadConfig{}); err == nil {
		t.Error("login payload for an unpaired device")
	}
	bad := &store.Device{ID: jid.NewAD("abc", 1, jid.DefaultUserServer)}
	if _, err := LoginPayload(bad, PayloadConfig{}); err == nil {
		t.Error("non-numeric user accepted")
	}
}

func TestParseVersion(t *testing.T) {
	v, err := ParseVersion("2.3000.1031080782")
	if err != nil || v != (Version{2, 3000, 1031080782}) {
		t.Fatalf("ParseVersion = %v, %v", v, err)
	}
	h := v.BuildHash()
	if want, _ := hex.DecodeString("c6779ee540c6f59ea0167c7c5db73d75"); !bytes.Equal(h[:], want) {
		t.Errorf("BuildHash = %x", h)
	}
	for _, s := range []string{"", "2.3000", "2.3000.x", "2.3000.1.2", "-1.2.3", "2.3000.99999999999"} {
		if _, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) accepted", s)
		}
	}
}
