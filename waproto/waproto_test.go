package waproto_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/waproto"
)

// roundTrip unmarshals b into m, re-marshals it and requires the same bytes:
// our field numbers and wire types must match the implementation that wrote
// the vector.
func roundTrip(t *testing.T, name string, b []byte, m proto.Message) {
	t.Helper()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("%s: unmarshal: %v", name, err)
	}
	if u := m.ProtoReflect().GetUnknown(); len(u) != 0 {
		t.Fatalf("%s: %d bytes of unknown fields: wrong field numbers?", name, len(u))
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatalf("%s: marshal: %v", name, err)
	}
	if !bytes.Equal(out, b) {
		t.Fatalf("%s: re-marshal differs\n got %x\nwant %x", name, out, b)
	}
}

func TestClientPayloadRegistrationVector(t *testing.T) {
	v := vectors.Load(t)
	var p waproto.ClientPayload
	roundTrip(t, "client_payload_registration", vectors.Hex(t, v, "noise_xx", "client_payload_registration"), &p)

	if p.Username != nil || p.Device != nil {
		t.Errorf("registration payload has username/device: %v/%v", p.Username, p.Device)
	}
	if p.Passive == nil || p.GetPassive() {
		t.Errorf("passive = %v, want explicit false", p.Passive)
	}
	if p.Pull == nil || p.GetPull() {
		t.Errorf("pull = %v, want explicit false", p.Pull)
	}
	if got := p.GetConnectType(); got != waproto.ClientPayload_WIFI_UNKNOWN {
		t.Errorf("connectType = %v", got)
	}
	if got := p.GetConnectReason(); got != waproto.ClientPayload_USER_ACTIVATED {
		t.Errorf("connectReason = %v", got)
	}
	ua := p.GetUserAgent()
	if ua.GetPlatform() != waproto.ClientPayload_UserAgent_WEB || ua.GetPlatform() != 14 {
		t.Errorf("platform = %v", ua.GetPlatform())
	}
	av := ua.GetAppVersion()
	if av.GetPrimary() != 2 || av.GetSecondary() != 3000 || av.GetTertiary() != 1031080782 {
		t.Errorf("app version = %d.%d.%d", av.GetPrimary(), av.GetSecondary(), av.GetTertiary())
	}
	if ua.GetMcc() != "000" || ua.GetMnc() != "000" || ua.GetOsVersion() != "0.1" || ua.GetDevice() != "Desktop" ||
		ua.GetOsBuildNumber() != "0.1" || ua.GetLocaleLanguageIso6391() != "en" || ua.GetLocaleCountryIso31661Alpha2() != "US" {
		t.Errorf("user agent strings: %v", ua)
	}
	if ua.Manufacturer == nil || ua.GetManufacturer() != "" {
		t.Errorf("manufacturer = %v, want explicit empty", ua.Manufacturer)
	}
	if p.GetWebInfo().WebSubPlatform == nil || p.GetWebInfo().GetWebSubPlatform() != waproto.ClientPayload_WebInfo_WEB_BROWSER {
		t.Errorf("webInfo = %v", p.GetWebInfo())
	}

	d := p.GetDevicePairingData()
	if !bytes.Equal(d.GetERegid(), []byte{1, 2, 3, 4}) || !bytes.Equal(d.GetEKeytype(), []byte{5}) ||
		!bytes.Equal(d.GetESkeyID(), []byte{0, 0, 1}) {
		t.Errorf("pairing data ids: %x %x %x", d.GetERegid(), d.GetEKeytype(), d.GetESkeyID())
	}
	if !bytes.Equal(d.GetEIdent(), vectors.Hex(t, v, "adv_pairing", "companion_identity", "pub")) {
		t.Errorf("eIdent = %x", d.GetEIdent())
	}
	if !bytes.Equal(d.GetESkeyVal(), vectors.Hex(t, v, "xeddsa", "signed_prekey", "pub")) {
		t.Errorf("eSkeyVal = %x", d.GetESkeyVal())
	}
	if len(d.GetESkeySig()) != 64 || len(d.GetBuildHash()) != 16 {
		t.Errorf("sig/buildHash lengths %d/%d", len(d.GetESkeySig()), len(d.GetBuildHash()))
	}

	var props waproto.DeviceProps
	roundTrip(t, "deviceProps", d.GetDeviceProps(), &props)
	if props.GetOs() != "whatsmeow" || props.GetPlatformType() != waproto.DeviceProps_UNKNOWN {
		t.Errorf("device props = %v", &props)
	}
	if v := props.GetVersion(); v.GetPrimary() != 0 || v.GetSecondary() != 1 || v.GetTertiary() != 0 {
		t.Errorf("device props version = %v", v)
	}
	h := props.GetHistorySyncConfig()
	if h.GetStorageQuotaMb() != 10240 || !h.GetInlineInitialPayloadInE2EeMsg() || h.SupportCallLogHistory == nil || h.GetSupportCallLogHistory() {
		t.Errorf("history sync config = %v", h)
	}
}

func TestCertChainVector(t *testing.T) {
	v := vectors.Load(t)
	var c waproto.CertChain
	roundTrip(t, "cert_chain", vectors.Hex(t, v, "noise_xx", "cert_chain"), &c)

	if !bytes.Equal(c.GetLeaf().GetDetails(), vectors.Hex(t, v, "noise_xx", "cert_leaf_details")) {
		t.Errorf("leaf details differ")
	}
	if !bytes.Equal(c.GetIntermediate().GetDetails(), vectors.Hex(t, v, "noise_xx", "cert_intermediate_details")) {
		t.Errorf("intermediate details differ")
	}
	if len(c.GetLeaf().GetSignature()) != 64 || len(c.GetIntermediate().GetSignature()) != 64 {
		t.Errorf("signature lengths")
	}

	var leaf, inter waproto.CertChain_NoiseCertificate_Details
	roundTrip(t, "leaf details", c.GetLeaf().GetDetails(), &leaf)
	roundTrip(t, "intermediate details", c.GetIntermediate().GetDetails(), &inter)
	if inter.GetIssuerSerial() != 0 || inter.IssuerSerial == nil {
		t.Errorf("intermediate issuerSerial = %v", inter.IssuerSerial)
	}
	if leaf.GetIssuerSerial() != inter.GetSerial() {
		t.Errorf("leaf issuer %d != intermediate serial %d", leaf.GetIssuerSerial(), inter.GetSerial())
	}
	if !bytes.Equal(leaf.GetKey(), vectors.Hex(t, v, "noise_xx", "server_static", "pub")) {
		t.Errorf("leaf key = %x", leaf.GetKey())
	}
	if !bytes.Equal(inter.GetKey(), vectors.Hex(t, v, "noise_xx", "test_intermediate", "pub")) {
		t.Errorf("intermediate key = %x", inter.GetKey())
	}
	if leaf.GetNotBefore() >= leaf.GetNotAfter() || leaf.GetNotBefore() == 0 {
		t.Errorf("leaf validity %d..%d", leaf.GetNotBefore(), leaf.GetNotAfter())
	}
}

func TestHandshakeMessageVectors(t *testing.T) {
	v := vectors.Load(t)

	var m1 waproto.HandshakeMessage
	roundTrip(t, "msg1", vectors.Hex(t, v, "noise_xx", "msg1_client_hello_proto"), &m1)
	if !bytes.Equal(m1.GetClientHello().GetEphemeral(), vectors.Hex(t, v, "noise_xx", "client_ephemeral", "pub")) {
		t.Errorf("msg1 ephemeral = %x", m1.GetClientHello().GetEphemeral())
	}

	var m2 waproto.HandshakeMessage
	roundTrip(t, "msg2", vectors.Hex(t, v, "noise_xx", "msg2_server_hello_proto"), &m2)
	sh := m2.GetServerHello()
	if !bytes.Equal(sh.GetEphemeral(), vectors.Hex(t, v, "noise_xx", "server_ephemeral", "pub")) ||
		!bytes.Equal(sh.GetStatic(), vectors.Hex(t, v, "noise_xx", "msg2_server_static_ct")) ||
		!bytes.Equal(sh.GetPayload(), vectors.Hex(t, v, "noise_xx", "msg2_server_payload_ct")) {
		t.Errorf("msg2 fields differ: %v", sh)
	}

	var m3 waproto.HandshakeMessage
	roundTrip(t, "msg3", vectors.Hex(t, v, "noise_xx", "msg3_client_finish_proto"), &m3)
	cf := m3.GetClientFinish()
	if !bytes.Equal(cf.GetStatic(), vectors.Hex(t, v, "noise_xx", "msg3_client_static_ct")) ||
		!bytes.Equal(cf.GetPayload(), vectors.Hex(t, v, "noise_xx", "msg3_client_payload_ct")) {
		t.Errorf("msg3 fields differ")
	}
}

func TestADVVectors(t *testing.T) {
	v := vectors.Load(t)

	var container waproto.ADVSignedDeviceIdentityHMAC
	roundTrip(t, "device-identity", vectors.Hex(t, v, "adv_pairing", "device_identity_node_content_ADVSignedDeviceIdentityHMAC"), &container)
	if !bytes.Equal(container.GetDetails(), vectors.Hex(t, v, "adv_pairing", "adv_signed_device_identity")) {
		t.Errorf("container details differ")
	}
	if !bytes.Equal(container.GetHMAC(), vectors.Hex(t, v, "adv_pairing", "hmac_sha256_key_adv_secret_over_signed_identity")) {
		t.Errorf("container HMAC = %x", container.GetHMAC())
	}
	if container.AccountType != nil {
		t.Errorf("E2EE container carries accountType %v", container.GetAccountType())
	}

	var signed waproto.ADVSignedDeviceIdentity
	roundTrip(t, "signed identity", container.GetDetails(), &signed)
	if !bytes.Equal(signed.GetAccountSignatureKey(), vectors.Hex(t, v, "adv_pairing", "primary_account_identity", "pub")) {
		t.Errorf("account key = %x", signed.GetAccountSignatureKey())
	}
	if !bytes.Equal(signed.GetAccountSignature(), vectors.Hex(t, v, "adv_pairing", "account_signature")) {
		t.Errorf("account signature differs")
	}
	if signed.DeviceSignature != nil {
		t.Errorf("pair-success identity already has a device signature")
	}

	var id waproto.ADVDeviceIdentity
	roundTrip(t, "device identity", signed.GetDetails(), &id)
	if id.GetRawID() != 1234567 || id.GetTimestamp() != 1700000000 || id.GetKeyIndex() != 3 {
		t.Errorf("identity = %v", &id)
	}
	if !bytes.Equal(signed.GetDetails(), vectors.Hex(t, v, "adv_pairing", "adv_device_identity_details")) {
		t.Errorf("details differ")
	}

	var reply waproto.ADVSignedDeviceIdentity
	roundTrip(t, "reply", vectors.Hex(t, v, "adv_pairing", "pair_device_sign_reply_content_ADVSignedDeviceIdentity_without_account_key"), &reply)
	if reply.AccountSignatureKey != nil {
		t.Errorf("reply keeps the account key")
	}
	if !bytes.Equal(reply.GetDeviceSignature(), vectors.Hex(t, v, "adv_pairing", "device_signature")) {
		t.Errorf("device signature differs")
	}
}

func TestHostedAndKeyIndexEncoding(t *testing.T) {
	// Field 3 varint 1 = accountType HOSTED on the container.
	b, err := proto.Marshal(&waproto.ADVSignedDeviceIdentityHMAC{AccountType: waproto.ADVEncryptionType_HOSTED.Enum()})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x18, 0x01}; !bytes.Equal(b, want) {
		t.Errorf("hosted container = %x, want %x", b, want)
	}
	// validIndexes is packed: tag 0x22, length, varints.
	b, err = proto.Marshal(&waproto.ADVKeyIndexList{ValidIndexes: []uint32{1, 2, 300}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x22, 0x04, 0x01, 0x02, 0xac, 0x02}; !bytes.Equal(b, want) {
		t.Errorf("key index list = %x, want %x", b, want)
	}
}

func TestCompanionRegNumbers(t *testing.T) {
	// Field numbers of the passkey messages (CHANGES-2026 §6), checked on the wire.
	b, err := proto.Marshal(&waproto.CompanionEphemeralIdentity{
		PublicKey:  []byte{0xaa},
		DeviceType: waproto.DeviceProps_CHROME.Enum(),
		Ref:        proto.String("r"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x0a, 0x01, 0xaa, 0x10, 0x01, 0x1a, 0x01, 'r'}; !bytes.Equal(b, want) {
		t.Errorf("CompanionEphemeralIdentity = %x, want %x", b, want)
	}
	b, err = proto.Marshal(&waproto.EncryptedPairingRequest{EncryptedPayload: []byte{1}, IV: []byte{2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x0a, 0x01, 0x01, 0x12, 0x01, 0x02}; !bytes.Equal(b, want) {
		t.Errorf("EncryptedPairingRequest = %x, want %x", b, want)
	}
	b, err = proto.Marshal(&waproto.ProloguePayload{CompanionEphemeralIdentity: []byte{1}, Commitment: &waproto.CompanionCommitment{Hash: []byte{2}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x0a, 0x01, 0x01, 0x12, 0x03, 0x0a, 0x01, 0x02}; !bytes.Equal(b, want) {
		t.Errorf("ProloguePayload = %x, want %x", b, want)
	}
}
