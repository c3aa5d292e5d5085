package passkey

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/keys"
)

// FuzzRequestOptions: any bytes parse or fail; what parses keeps its JSON
// verbatim and its values survive a rebuild.
func FuzzRequestOptions(f *testing.F) {
	f.Add([]byte(`{"challenge":"AAEC","timeout":600000,"rpId":"whatsapp.com","allowCredentials":[{"id":"AQ","type":"public-key","transports":["internal","hybrid"]}],"userVerification":"required","extensions":{}}`))
	f.Add([]byte(`{"challenge":"-_8="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseRequestOptions(b)
		if err != nil {
			return
		}
		if !bytes.Equal(o.JSON(), b) {
			t.Fatal("options JSON not kept verbatim")
		}
		r := NewRequestOptions(o.Challenge(), o.RPID(), o.Timeout(), o.AllowCredentials(), o.UserVerification())
		back, err := ParseRequestOptions(r.JSON())
		if err != nil {
			t.Fatalf("rebuilt options do not parse: %v", err)
		}
		if !bytes.Equal(back.Challenge(), o.Challenge()) || back.RPID() != o.RPID() || back.Timeout() != o.Timeout() {
			t.Fatal("rebuilt options differ")
		}
	})
}

// FuzzAssertion: parse, re-encode, parse again to the same value.
func FuzzAssertion(f *testing.F) {
	f.Add([]byte(`{"id":"we0A-_8-","rawId":"we0A-_8-","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AQ","signature":"Ag","userHandle":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAssertion(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := ParseAssertion(out)
		if err != nil {
			t.Fatal(err)
		}
		out2, _ := json.Marshal(a2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("unstable: %s vs %s", out, out2)
		}
	})
}

// FuzzNodes feeds decoded nodes to every node parser and to a live flow:
// no panic, and a flow never takes a node that is not its own.
func FuzzNodes(f *testing.F) {
	pub, _ := keys.NewKeyPair(&detRand{n: 1})
	for _, n := range []binxml.Node{
		PrologueRequest("1", "2", []byte(`{"challenge":"AQ"}`)), PrologueRequest("1", "", nil),
		Continuation("3", "4", PrimaryIdentity{PublicKey: pub.Public, Nonce: [32]byte{1}}),
		PrologueIQ("5", PrologueStanza{CredentialID: []byte{1}, Assertion: []byte("{}"), Payload: MarshalPrologue(CompanionIdentity{PublicKey: pub.Public, Ref: "2@r"}.Marshal(), [32]byte{}), Proof: make([]byte, 32)}),
		CompanionNonceIQ("6", [32]byte{2}), EncryptedPairingRequestIQ("7", SealPairingRequest([32]byte{}, [12]byte{}, PairingRequest{})),
		RefResult("8", "2@x"), RequestOptionsResult("9", []byte(`{}`)), iqErr("10", 401),
	} {
		b, err := binxml.Marshal(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := binxml.Unmarshal(b)
		if err != nil {
			return
		}
		_, _ = ParsePrologueRequest(n)
		_, _ = ParseContinuation(n)
		_, _ = ParsePrologueIQ(n)
		_, _ = ParseCompanionNonceIQ(n)
		_, _ = ParseEncryptedPairingRequestIQ(n)
		_, _ = ParseRefResult(n)
		_, _ = ParseRequestOptionsResult(n)
		_ = ParseReply(n, "x")
		fl, _ := NewFlow(FlowConfig{Rand: &detRand{}, NewID: func() string { return "1" }})
		now := time.Unix(0, 0)
		_, took := fl.HandleNode(now, n, [32]byte{})
		typ := n.Attr("type")
		if took && !(n.Tag == "notification" && (typ == TypePrologueRequest || typ == TypeContinuation)) {
			t.Fatalf("idle flow took %v", n)
		}
	})
}

// FuzzProtobufs: the step's protobufs parse or fail, and what parses
// re-encodes to bytes that parse to the same value.
func FuzzProtobufs(f *testing.F) {
	pub, _ := keys.NewKeyPair(&detRand{n: 1})
	ident := CompanionIdentity{PublicKey: pub.Public, DeviceType: 1, Ref: "2@r"}.Marshal()
	f.Add(ident)
	f.Add(MarshalPrologue(ident, [32]byte{9}))
	f.Add(PrimaryIdentity{PublicKey: pub.Public}.Marshal())
	f.Add(PairingRequest{}.Marshal())
	f.Add(SealPairingRequest([32]byte{}, [12]byte{}, PairingRequest{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseCompanionIdentity(b); err == nil {
			if c2, err := ParseCompanionIdentity(c.Marshal()); err != nil || c2 != c {
				t.Fatalf("identity round trip: %v", err)
			}
		}
		if p, err := ParsePrologue(b); err == nil {
			p2, err := ParsePrologue(MarshalPrologue(p.IdentityBytes, p.Commitment))
			if err != nil || !bytes.Equal(p2.IdentityBytes, p.IdentityBytes) || p2.Commitment != p.Commitment {
				t.Fatalf("prologue round trip: %v", err)
			}
		}
		if p, err := ParsePrimaryIdentity(b); err == nil {
			if p2, err := ParsePrimaryIdentity(p.Marshal()); err != nil || p2 != p {
				t.Fatal("primary identity round trip")
			}
		}
		if r, err := ParsePairingRequest(b); err == nil {
			if r2, err := ParsePairingRequest(r.Marshal()); err != nil || r2 != r {
				t.Fatal("pairing request round trip")
			}
		}
		_, _ = OpenPairingRequest([32]byte{}, b)
	})
}
