package waproto_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/waproto"
)

// fuzzMessages are the messages walink decodes from a peer: the handshake,
// the certificate chain inside it, the ADV identity containers of
// pair-success, and (for the local WhatsApp) the client payload.
func fuzzMessages() []proto.Message {
	return []proto.Message{
		&waproto.HandshakeMessage{}, &waproto.CertChain{}, &waproto.CertChain_NoiseCertificate_Details{},
		&waproto.ADVSignedDeviceIdentityHMAC{}, &waproto.ADVSignedDeviceIdentity{}, &waproto.ADVDeviceIdentity{},
		&waproto.ClientPayload{}, &waproto.DeviceProps{}, &waproto.CompanionEphemeralIdentity{},
		&waproto.ProloguePayload{}, &waproto.PrimaryEphemeralIdentity{}, &waproto.PairingRequest{}, &waproto.EncryptedPairingRequest{}, &waproto.ClientPairingProps{},
	}
}

// FuzzUnmarshal: arbitrary bytes decode into each message or fail, never
// panic, and whatever decodes re-encodes to bytes that decode to an equal
// message.
func FuzzUnmarshal(f *testing.F) {
	v := vectors.Load(f)
	for _, p := range [][]string{
		{"noise_xx", "msg1_client_hello_proto"}, {"noise_xx", "msg2_server_hello_proto"}, {"noise_xx", "msg3_client_finish_proto"},
		{"noise_xx", "cert_chain"}, {"noise_xx", "cert_leaf_details"}, {"noise_xx", "client_payload_registration"},
		{"adv_pairing", "device_identity_node_content_ADVSignedDeviceIdentityHMAC"}, {"adv_pairing", "adv_signed_device_identity"},
		{"adv_pairing", "adv_device_identity_details"},
	} {
		f.Add(vectors.Hex(f, v, p...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range fuzzMessages() {
			if err := proto.Unmarshal(b, m); err != nil {
				continue
			}
			out, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatalf("%T decodes but does not encode: %v", m, err)
			}
			m2 := m.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(out, m2); err != nil {
				t.Fatalf("%T re-encoding does not decode: %v", m, err)
			}
			if !proto.Equal(m, m2) {
				t.Fatalf("%T unstable round trip", m)
			}
		}
	})
}
