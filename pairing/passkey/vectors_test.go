package passkey

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/walinkdev/walink/keys"
)

type vectorFile struct {
	Worked map[string]any `json:"worked_example"`
	Fresh  map[string]any `json:"fresh"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func vhex(t *testing.T, m map[string]any, k string) []byte {
	t.Helper()
	s, ok := m[k].(string)
	if !ok {
		t.Fatalf("vector %q missing", k)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("vector %q: %v", k, err)
	}
	return b
}

func vstr(t *testing.T, m map[string]any, k string) string {
	t.Helper()
	s, ok := m[k].(string)
	if !ok {
		t.Fatalf("vector %q missing", k)
	}
	return s
}

func eq(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

// The literals of PASSKEY.md §9, as printed there.
const (
	docCode       = "PM4B-XG3Z"
	docProof      = "3705a8bf7d3fb800d46430d95d9da78d190b9d51db95218e294ae65a5337b873"
	docKey        = "34291593f98e38803f533ffb2d47c360a167e596bb3eb02e7ea3ca73b1fd0c5c"
	docPairingReq = "0a208cac258e970c517d706eda7f5a72cc024ae1e94c7b37e29c4f263e284362304c1220208f49bf98181a4eeb2d3db651a40b580ebfa9ecd08d926f90008e1ca39ab86d1a20603560959f0b8fd0821e5693a89b76713c8848e25426a79a69e59ab20bd53fa8"
)

func TestWorkedExample(t *testing.T) {
	w := loadVectors(t).Worked
	cn, pp, pn := [32]byte(vhex(t, w, "companion_nonce")), [32]byte(vhex(t, w, "primary_public")), [32]byte(vhex(t, w, "primary_nonce"))

	code := ConfirmationCode(cn, pp, pn)
	if code != docCode || code != vstr(t, w, "code") {
		t.Errorf("code = %s, want %s (doc) = %s (node)", code, docCode, vstr(t, w, "code"))
	}

	prologue := vhex(t, w, "prologue_payload")
	p, err := ParsePrologue(prologue)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "identity bytes", p.IdentityBytes, vhex(t, w, "identity_bytes"))
	c := Commitment(p.IdentityBytes, cn)
	eq(t, "commitment", c[:], vhex(t, w, "commitment"))
	eq(t, "commitment = prologue's last 32 bytes", c[:], prologue[len(prologue)-32:])
	eq(t, "commitment in the parsed prologue", p.Commitment[:], c[:])
	if p.Identity.DeviceType != 0 || p.Identity.Ref != vstr(t, w, "ref") {
		t.Errorf("identity = %+v", p.Identity)
	}
	eq(t, "re-encoded identity", p.Identity.Marshal(), p.IdentityBytes)
	eq(t, "re-encoded prologue", MarshalPrologue(p.IdentityBytes, c), prologue)

	adv := [32]byte(vhex(t, w, "qr_adv_secret"))
	hk := HandoffKey(adv)
	eq(t, "handoff key", hk[:], vhex(t, w, "handoff_key"))
	proof := HandoffProof(hk, prologue)
	eq(t, "handoff proof (node)", proof[:], vhex(t, w, "handoff_proof"))
	eq(t, "handoff proof (doc)", proof[:], unhex(t, docProof))
	if !VerifyHandoffProof(adv, prologue, proof[:]) {
		t.Error("VerifyHandoffProof refuses the worked example")
	}

	priv, _ := keys.PrivateKeyFromBytes(vhex(t, w, "primary_private"))
	cpub, _ := keys.PublicKeyFromBytes(vhex(t, w, "companion_public"))
	ss, err := SharedSecret(priv, cpub)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "shared secret", ss, vhex(t, w, "shared_secret"))
	if s := EncryptionKeySalt(0, vstr(t, w, "ref")); s != vstr(t, w, "salt") {
		t.Errorf("salt = %q", s)
	}
	k := EncryptionKey(ss, 0, vstr(t, w, "ref"))
	eq(t, "key (node)", k[:], vhex(t, w, "key"))
	eq(t, "key (doc)", k[:], unhex(t, docKey))

	// The run's EncryptedPairingRequest, rebuilt from its two fields.
	sealed := sealedFrom(vhex(t, w, "encrypted_payload"), [IVSize]byte(vhex(t, w, "iv")))
	req, err := OpenPairingRequest(k, sealed)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "pairing request (node)", req.Marshal(), vhex(t, w, "pairing_request"))
	eq(t, "pairing request (doc)", req.Marshal(), unhex(t, docPairingReq))
	eq(t, "re-sealed", SealPairingRequest(k, [IVSize]byte(vhex(t, w, "iv")), req), sealed)
}

func TestFreshVectors(t *testing.T) {
	f := loadVectors(t).Fresh
	cpriv, _ := keys.PrivateKeyFromBytes(vhex(t, f, "companion_private"))
	ppriv, _ := keys.PrivateKeyFromBytes(vhex(t, f, "primary_private"))
	eq(t, "companion public", cpriv.Public().Bytes(), vhex(t, f, "companion_public"))
	eq(t, "primary public", ppriv.Public().Bytes(), vhex(t, f, "primary_public"))
	dt := int32(f["device_type"].(float64))
	ref := vstr(t, f, "ref")
	ident := CompanionIdentity{PublicKey: cpriv.Public(), DeviceType: dt, Ref: ref}.Marshal()
	eq(t, "identity bytes", ident, vhex(t, f, "identity_bytes"))
	cn := [32]byte(vhex(t, f, "companion_nonce"))
	c := Commitment(ident, cn)
	eq(t, "commitment", c[:], vhex(t, f, "commitment"))
	pro := MarshalPrologue(ident, c)
	eq(t, "prologue", pro, vhex(t, f, "prologue_payload"))
	hk := HandoffKey([32]byte(vhex(t, f, "adv_secret_shown")))
	eq(t, "handoff key", hk[:], vhex(t, f, "handoff_key"))
	proof := HandoffProof(hk, pro)
	eq(t, "handoff proof", proof[:], vhex(t, f, "handoff_proof"))
	pn := [32]byte(vhex(t, f, "primary_nonce"))
	if code := ConfirmationCode(cn, ppriv.Public().Array(), pn); code != vstr(t, f, "code") {
		t.Errorf("code = %s, want %s", code, vstr(t, f, "code"))
	}
	eq(t, "primary identity", PrimaryIdentity{PublicKey: ppriv.Public(), Nonce: pn}.Marshal(), vhex(t, f, "primary_identity"))
	ss1, _ := SharedSecret(cpriv, ppriv.Public())
	ss2, _ := SharedSecret(ppriv, cpriv.Public())
	eq(t, "shared secret (companion)", ss1, vhex(t, f, "shared_secret"))
	eq(t, "shared secret (primary)", ss2, vhex(t, f, "shared_secret"))
	if s := EncryptionKeySalt(dt, ref); s != vstr(t, f, "salt") {
		t.Errorf("salt = %q", s)
	}
	k := EncryptionKey(ss1, dt, ref)
	eq(t, "key", k[:], vhex(t, f, "key"))
	noise, _ := keys.PublicKeyFromBytes(vhex(t, f, "noise_public"))
	id, _ := keys.PublicKeyFromBytes(vhex(t, f, "identity_public"))
	req := PairingRequest{CompanionNoise: noise, CompanionIdentity: id, AdvSecret: [32]byte(vhex(t, f, "adv_secret_new"))}
	eq(t, "pairing request", req.Marshal(), vhex(t, f, "pairing_request"))
	sealed := SealPairingRequest(k, [IVSize]byte(vhex(t, f, "iv")), req)
	eq(t, "encrypted pairing request", sealed, vhex(t, f, "encrypted_pairing_request"))
	back, err := OpenPairingRequest(k, sealed)
	if err != nil || back != req {
		t.Errorf("open = %#v, %v", back, err)
	}
	// One flipped bit anywhere in the ciphertext or tag is refused.
	bad := bytes.Clone(sealed)
	bad[10] ^= 1
	if _, err := OpenPairingRequest(k, bad); err == nil {
		t.Error("tampered request opened")
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
