package waproto_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/waproto"
)

// TestE2ETranscriptPayloads round-trips every protobuf the real whatsmeow
// client sent in e2e_transcript.json: registration and login ClientPayloads,
// client hellos, and the mock server's cert chain.
func TestE2ETranscriptPayloads(t *testing.T) {
	tr := vectors.LoadFile(t, "e2e_transcript.json")
	chain, err := hex.DecodeString(vectors.Str(t, tr, "cert_chain"))
	if err != nil {
		t.Fatal(err)
	}
	var c waproto.CertChain
	roundTrip(t, "e2e cert_chain", chain, &c)

	entries, _ := tr["entries"].([]any)
	logins, regs, hellos := 0, 0, 0
	for i, e := range entries {
		m, _ := e.(map[string]any)
		what, _ := m["what"].(string)
		h, _ := m["hex"].(string)
		if h == "" {
			continue
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		switch {
		case strings.Contains(what, "ClientPayload"):
			var p waproto.ClientPayload
			roundTrip(t, what, b, &p)
			if p.Username != nil {
				logins++
				// Login payload (PROTOCOL.md §6.4, whatsmeow flavour).
				if !p.GetPassive() || !p.GetPull() || !p.GetLidDbMigrated() || p.Device == nil || p.DevicePairingData != nil {
					t.Errorf("entry %d: login payload fields: %v", i, &p)
				}
				if p.GetUsername() < 1_000_000 || p.GetDevice() == 0 {
					t.Errorf("entry %d: username %d device %d", i, p.GetUsername(), p.GetDevice())
				}
			} else {
				regs++
				if p.GetDevicePairingData() == nil || p.GetPassive() || p.GetPull() {
					t.Errorf("entry %d: registration payload fields: %v", i, &p)
				}
				var props waproto.DeviceProps
				roundTrip(t, "deviceProps", p.GetDevicePairingData().GetDeviceProps(), &props)
			}
		case strings.Contains(what, "clientHello"):
			var hm waproto.HandshakeMessage
			roundTrip(t, what, b, &hm)
			if len(hm.GetClientHello().GetEphemeral()) != 32 {
				t.Errorf("entry %d: ephemeral length %d", i, len(hm.GetClientHello().GetEphemeral()))
			}
			hellos++
		}
	}
	if logins == 0 || regs == 0 || hellos == 0 {
		t.Fatalf("transcript coverage: %d logins, %d registrations, %d hellos", logins, regs, hellos)
	}
}
