package watest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/walinkdev/walink/pairing/passkey"
)

// FuzzPasskeyAssertion feeds arbitrary assertion JSON to the relying
// party: it never panics, and whatever it accepts is the phone's own
// credential, for the step's challenge, with UP and UV set. Seeds are in
// testdata/fuzz/FuzzPasskeyAssertion (and one valid assertion made here).
func FuzzPasskeyAssertion(f *testing.F) {
	s, err := newServer(Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.cancel()
	p := s.Phone(testNumber)
	challenge := bytes.Repeat([]byte{7}, 32)
	s.mu.Lock()
	cred := p.credLocked()
	s.mu.Unlock()
	opts := passkey.NewRequestOptions(challenge, passkeyRPID, 0, []passkey.AllowedCredential{{ID: cred.id, Type: "public-key"}}, "required")
	good, err := p.Assert(opts.JSON())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		st := &passkeyStep{cred: cred, challenge: challenge}
		pk := &passkeyServer{used: map[string]bool{}}
		v := st.verifyAssertionLocked(pk, cred.id, b)
		if v.refuse != "" {
			return
		}
		a, err := passkey.ParseAssertion(b)
		if err != nil {
			t.Fatalf("accepted an assertion that does not parse: %v", err)
		}
		var cd struct{ Challenge string }
		_ = json.Unmarshal(a.Response.ClientDataJSON, &cd)
		ad := a.Response.AuthenticatorData
		if !bytes.Equal(a.RawID, cred.id) || v.challenge != string(challenge) || ad[32]&(flagUP|flagUV) != flagUP|flagUV {
			t.Fatalf("accepted %s", b)
		}
	})
}
