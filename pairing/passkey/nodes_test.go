package passkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
)

// roundTrip encodes and decodes a node with the real codec, as it crosses
// the wire.
func roundTrip(t *testing.T, n binxml.Node) binxml.Node {
	t.Helper()
	b, err := binxml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	out, err := binxml.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNodeShapes(t *testing.T) {
	// Companion IQs: <iq id xmlns="md" type to=s.whatsapp.net(JID)> with one child.
	for _, c := range []struct {
		n          binxml.Node
		typ, child string
	}{
		{RequestOptionsIQ("1"), "get", TagRequestOptions},
		{RefIQ("2"), "get", TagRef},
		{PrologueIQ("3", PrologueStanza{CredentialID: []byte{1}, Assertion: []byte("{}"), Payload: []byte{2}}), "set", TagPrologue},
		{CompanionNonceIQ("4", [32]byte{}), "set", TagCompanionNonce},
		{EncryptedPairingRequestIQ("5", []byte{1}), "set", TagEncryptedPairingRequest},
	} {
		n := roundTrip(t, c.n)
		to, ok := n.AttrJID("to")
		if n.Tag != "iq" || n.Attr("xmlns") != "md" || n.Attr("type") != c.typ || !ok || to != jid.ServerJID || len(n.Children) != 1 || n.Children[0].Tag != c.child {
			t.Errorf("%s: %v", c.child, n)
		}
		if !IsStepIQ(c.child) {
			t.Errorf("IsStepIQ(%s) = false", c.child)
		}
	}
	// The prologue's children in exactly this order, no attributes; the
	// proof only when given.
	p := PrologueIQ("3", PrologueStanza{CredentialID: []byte{1}, Assertion: []byte("{}"), Payload: []byte{2}, Proof: make([]byte, 32)})
	var tags []string
	for _, c := range p.Children[0].Children {
		tags = append(tags, c.Tag)
		if len(c.Attrs) != 0 {
			t.Errorf("<%s> has attributes", c.Tag)
		}
	}
	if strings.Join(tags, ",") != "credential_id,webauthn_assertion,prologue_payload,pairing_handoff_proof" {
		t.Errorf("prologue children %v", tags)
	}
	st, err := ParsePrologueIQ(roundTrip(t, p))
	if err != nil || len(st.Proof) != 32 || !bytes.Equal(st.CredentialID, []byte{1}) {
		t.Errorf("parse prologue: %+v %v", st, err)
	}
	// Server notifications: from is the typed server JID.
	for _, n := range []binxml.Node{PrologueRequest("9", "1", []byte("{}")), Continuation("9", "1", PrimaryIdentity{})} {
		n = roundTrip(t, n)
		if n.Attrs[0].Key != "from" || !n.Attrs[0].IsJID() {
			t.Errorf("%s: from is not a JID", n.Attr("type"))
		}
	}
	if _, err := ParseContinuation(roundTrip(t, Continuation("9", "1", PrimaryIdentity{Nonce: [32]byte{7}}))); err != nil {
		t.Errorf("continuation: %v", err)
	}
	if ref, err := ParseRefResult(roundTrip(t, RefResult("2", "2@abc"))); err != nil || ref != "2@abc" {
		t.Errorf("ref = %q, %v", ref, err)
	}
	// The options must be a direct child of the fetch's result.
	nested := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "result")}, Children: []binxml.Node{{Tag: "x", Children: []binxml.Node{{Tag: TagRequestOptions, Content: []byte("{}")}}}}}
	if _, err := ParseRequestOptionsResult(nested); !errors.Is(err, ErrMalformed) {
		t.Errorf("nested options: %v", err)
	}
}

func TestOptionsJSON(t *testing.T) {
	o := NewRequestOptions([]byte{0xfb, 0xff}, "whatsapp.com", 600*time.Second,
		[]AllowedCredential{{ID: []byte{0xc1, 0xed}, Type: "public-key", Transports: []string{"internal", "hybrid"}}}, "required")
	want := `{"challenge":"-_8","timeout":600000,"rpId":"whatsapp.com","allowCredentials":[{"id":"we0","type":"public-key","transports":["internal","hybrid"]}],"userVerification":"required","extensions":{}}`
	if string(o.JSON()) != want {
		t.Fatalf("options JSON\n got %s\nwant %s", o.JSON(), want)
	}
	// Key names match case-insensitively and unknown keys are ignored, as
	// in encoding/json; the JSON is kept verbatim.
	in := []byte(`{"CHALLENGE":"-_8","Timeout":5,"rpid":"x","unknown":[1],"allowCredentials":[{"id":"AQ","type":"public-key"}]}`)
	p, err := ParseRequestOptions(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Challenge(), []byte{0xfb, 0xff}) || p.Timeout() != 5*time.Millisecond || p.RPID() != "x" || !bytes.Equal(p.JSON(), in) {
		t.Fatalf("parsed %+v", p)
	}
	if a := p.AllowCredentials(); len(a) != 1 || !bytes.Equal(a[0].ID, []byte{1}) {
		t.Fatalf("allow = %+v", a)
	}
	nested, _ := json.Marshal(map[string]any{"options": p})
	if string(nested) != `{"options":`+string(in)+`}` {
		t.Fatalf("nested = %s", nested)
	}
	for _, bad := range []string{`{"challenge":"-_8="}`, `{"challenge":"+/8"}`, `{"timeout":"600000"}`, `{"timeout":6e5}`, `[`} {
		if _, err := ParseRequestOptions([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestAssertionJSON(t *testing.T) {
	a := Assertion{ID: "we0A-_8-", RawID: []byte{0xc1, 0xed, 0x00, 0xfb, 0xff, 0x3e}, Type: "public-key", Response: AssertionResponse{
		ClientDataJSON: []byte("{}"), AuthenticatorData: []byte{1}, Signature: []byte{2},
	}}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"we0A-_8-","rawId":"we0A-_8-","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AQ","signature":"Ag","userHandle":null}}`
	if string(b) != want {
		t.Fatalf("assertion JSON\n got %s\nwant %s", b, want)
	}
	back, err := ParseAssertion(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip %s", b2)
	}
	// A browser's toJSON() has more keys; they are ignored.
	var fromBrowser Assertion
	if err := json.Unmarshal([]byte(`{"id":"AQ","rawId":"AQ","type":"public-key","authenticatorAttachment":"platform","clientExtensionResults":{},"response":{"clientDataJSON":"e30","authenticatorData":"AQ","signature":"Ag","userHandle":"dQ"}}`), &fromBrowser); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromBrowser.Response.UserHandle, []byte("u")) {
		t.Fatalf("userHandle = %q", fromBrowser.Response.UserHandle)
	}
}

func TestReply(t *testing.T) {
	if err := ParseReply(result("1"), TagRef); err != nil {
		t.Fatal(err)
	}
	err := ParseReply(iqErr("1", 401), TagPrologue)
	var iqe *IQError
	if !errors.As(err, &iqe) || iqe.Code != 401 || !errors.Is(err, ErrRefused) {
		t.Fatalf("%v", err)
	}
	if err := ParseReply(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "get")}}, TagRef); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%v", err)
	}
}
