package pairing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/waproto"
)

type advVec struct {
	adv       [32]byte
	companion keys.KeyPair
	account   keys.KeyPair
	container []byte
	signed    []byte
	details   []byte
	reply     []byte
	v         map[string]any
}

func loadADV(t testing.TB) advVec {
	t.Helper()
	v := vectors.Load(t)
	return advVec{
		adv:       [32]byte(vectors.Hex(t, v, "adv_pairing", "adv_secret")),
		companion: kp(t, v, "adv_pairing", "companion_identity"),
		account:   kp(t, v, "adv_pairing", "primary_account_identity"),
		container: vectors.Hex(t, v, "adv_pairing", "device_identity_node_content_ADVSignedDeviceIdentityHMAC"),
		signed:    vectors.Hex(t, v, "adv_pairing", "adv_signed_device_identity"),
		details:   vectors.Hex(t, v, "adv_pairing", "adv_device_identity_details"),
		reply:     vectors.Hex(t, v, "adv_pairing", "pair_device_sign_reply_content_ADVSignedDeviceIdentity_without_account_key"),
		v:         v,
	}
}

func TestADVVectorMessages(t *testing.T) {
	a := loadADV(t)
	if got, want := advHMAC(&a.adv, waproto.ADVEncryptionType_E2EE, a.signed), vectors.Hex(t, a.v, "adv_pairing", "hmac_sha256_key_adv_secret_over_signed_identity"); !bytes.Equal(got, want) {
		t.Fatalf("HMAC = %x, want %x", got, want)
	}
	accMsg := accountSigMessage(waproto.ADVEncryptionType_E2EE, a.details, a.companion.Public)
	if want := vectors.Hex(t, a.v, "adv_pairing", "account_signature_message"); !bytes.Equal(accMsg, want) {
		t.Fatalf("account signature message = %x, want %x", accMsg, want)
	}
	devMsg := deviceSigMessage(prefixDeviceSig, a.details, a.companion.Public, a.account.Public)
	if want := vectors.Hex(t, a.v, "adv_pairing", "device_signature_message"); !bytes.Equal(devMsg, want) {
		t.Fatalf("device signature message = %x, want %x", devMsg, want)
	}
	if !keys.Verify(a.account.Public, accMsg, vectors.Hex(t, a.v, "adv_pairing", "account_signature")) {
		t.Fatal("vector account signature does not verify over our message")
	}
	if !keys.Verify(a.companion.Public, devMsg, vectors.Hex(t, a.v, "adv_pairing", "device_signature")) {
		t.Fatal("vector device signature does not verify over our message")
	}
	// DeviceIdentity serializes to the vector's details.
	id := DeviceIdentity{RawID: 1234567, Timestamp: 1700000000, KeyIndex: 3}
	got, err := marshalOpts.Marshal(id.proto())
	if err != nil || !bytes.Equal(got, a.details) {
		t.Fatalf("details = %x, %v; want %x", got, err, a.details)
	}
}

// checkReply compares a reply with the vector's, field by field: the
// device signature is randomized, so it must verify instead of match.
func checkReply(t *testing.T, a advVec, reply []byte) {
	t.Helper()
	var got, want waproto.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(reply, &got); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(a.reply, &want); err != nil {
		t.Fatal(err)
	}
	if got.AccountSignatureKey != nil {
		t.Error("reply keeps the account key")
	}
	if !bytes.Equal(got.GetDetails(), want.GetDetails()) || !bytes.Equal(got.GetAccountSignature(), want.GetAccountSignature()) {
		t.Error("reply details/account signature differ from the vector")
	}
	if len(got.GetDeviceSignature()) != 64 ||
		!keys.Verify(a.companion.Public, deviceSigMessage(prefixDeviceSig, got.GetDetails(), a.companion.Public, a.account.Public), got.GetDeviceSignature()) {
		t.Error("reply device signature does not verify")
	}
	// Same wire layout as the vector apart from the signature bytes.
	if len(reply) != len(a.reply) || !bytes.Equal(reply[:len(reply)-64], a.reply[:len(a.reply)-64]) {
		t.Errorf("reply layout differs:\n got %x\nwant %x", reply, a.reply)
	}
}

func TestVerifyPairSuccessVector(t *testing.T) {
	a := loadADV(t)
	ver, err := VerifyPairSuccess(rand.Reader, a.adv, a.companion, a.container)
	if err != nil {
		t.Fatal(err)
	}
	if want := (DeviceIdentity{RawID: 1234567, Timestamp: 1700000000, KeyIndex: 3}); ver.Identity != want {
		t.Errorf("identity = %+v, want %+v", ver.Identity, want)
	}
	if ver.Identity.KeyIndexAttr() != "3" {
		t.Errorf("key-index attr = %q", ver.Identity.KeyIndexAttr())
	}
	if !ver.AccountKey.Equal(a.account.Public) || ver.HostedAccount {
		t.Errorf("account key %v hosted %v", ver.AccountKey, ver.HostedAccount)
	}
	checkReply(t, a, ver.Reply)

	var acc waproto.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(ver.Account, &acc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(acc.GetAccountSignatureKey(), a.account.Public.Bytes()) || !bytes.Equal(acc.GetDeviceSignature(), mustField(t, ver.Reply)) {
		t.Error("Account must keep the key and carry the same device signature as Reply")
	}

	// The server accepts both our reply and the vector's.
	for name, r := range map[string][]byte{"ours": ver.Reply, "vector": a.reply} {
		id, err := VerifyDeviceSignature(r, a.companion.Public, a.account.Public, false)
		if err != nil || id != ver.Identity {
			t.Errorf("VerifyDeviceSignature(%s) = %+v, %v", name, id, err)
		}
	}
	// The stored Account (with the key) is also accepted.
	if _, err := VerifyDeviceSignature(ver.Account, a.companion.Public, a.account.Public, false); err != nil {
		t.Errorf("VerifyDeviceSignature(account) = %v", err)
	}
}

func mustField(t *testing.T, reply []byte) []byte {
	t.Helper()
	var m waproto.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(reply, &m); err != nil {
		t.Fatal(err)
	}
	return m.GetDeviceSignature()
}

func TestSignDeviceIdentityVectorShape(t *testing.T) {
	a := loadADV(t)
	id := DeviceIdentity{RawID: 1234567, Timestamp: 1700000000, KeyIndex: 3}
	c, err := SignDeviceIdentity(rand.Reader, a.account, a.companion.Public, a.adv, id)
	if err != nil {
		t.Fatal(err)
	}
	// Same length and layout as the phone's, only the signature and so the HMAC differ.
	if len(c) != len(a.container) || !bytes.Equal(c[:4+len(a.details)+2+32+2], a.container[:4+len(a.details)+2+32+2]) {
		t.Errorf("container layout differs:\n got %x\nwant %x", c, a.container)
	}
	ver, err := VerifyPairSuccess(rand.Reader, a.adv, a.companion, c)
	if err != nil || ver.Identity != id {
		t.Fatalf("VerifyPairSuccess = %+v, %v", ver, err)
	}
}

// tamper re-wraps a modified signed identity in a container with a valid
// HMAC, so the check under test is the one after the HMAC.
func tamper(t *testing.T, adv [32]byte, container []byte, edit func(*waproto.ADVSignedDeviceIdentity)) []byte {
	t.Helper()
	var c waproto.ADVSignedDeviceIdentityHMAC
	if err := proto.Unmarshal(container, &c); err != nil {
		t.Fatal(err)
	}
	var s waproto.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(c.GetDetails(), &s); err != nil {
		t.Fatal(err)
	}
	edit(&s)
	b, err := proto.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	c.Details = b
	c.HMAC = advHMAC(&adv, c.GetAccountType(), b)
	out, err := proto.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyPairSuccessRefusals(t *testing.T) {
	a := loadADV(t)
	check := func(name string, container []byte, adv [32]byte, want error, code int, text string) {
		t.Helper()
		ver, err := VerifyPairSuccess(rand.Reader, adv, a.companion, container)
		if !errors.Is(err, want) || ver != nil {
			t.Errorf("%s: err = %v, want %v", name, err, want)
			return
		}
		if c, tx := ErrorReply(err); c != code || tx != text {
			t.Errorf("%s: ErrorReply = %d %q, want %d %q", name, c, tx, code, text)
		}
	}

	badHMAC := bytes.Clone(a.container)
	badHMAC[len(badHMAC)-1] ^= 1
	check("flipped hmac", badHMAC, a.adv, ErrHMACMismatch, 401, "hmac-mismatch")
	otherAdv := a.adv
	otherAdv[0] ^= 1
	check("other adv secret", a.container, otherAdv, ErrHMACMismatch, 401, "hmac-mismatch")
	noHMAC, _ := proto.Marshal(&waproto.ADVSignedDeviceIdentityHMAC{Details: a.signed})
	check("missing hmac", noHMAC, a.adv, ErrHMACMismatch, 401, "hmac-mismatch")
	// Declaring the container hosted changes the HMAC input.
	hosted, _ := proto.Marshal(&waproto.ADVSignedDeviceIdentityHMAC{Details: a.signed, HMAC: advHMAC(&a.adv, 0, a.signed), AccountType: waproto.ADVEncryptionType_HOSTED.Enum()})
	check("hosted flag added", hosted, a.adv, ErrHMACMismatch, 401, "hmac-mismatch")

	check("account signature", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignature[5] ^= 1 }),
		a.adv, ErrSignatureMismatch, 401, "signature-mismatch")
	check("short account signature", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignature = s.AccountSignature[:63] }),
		a.adv, ErrSignatureMismatch, 401, "signature-mismatch")
	check("details", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) {
		d, _ := proto.Marshal(&waproto.ADVDeviceIdentity{RawID: proto.Uint32(1234567), Timestamp: proto.Uint64(1700000000), KeyIndex: proto.Uint32(4)})
		s.Details = d
	}), a.adv, ErrSignatureMismatch, 401, "signature-mismatch")
	check("other account key", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignatureKey = a.companion.Public.Bytes() }),
		a.adv, ErrSignatureMismatch, 401, "signature-mismatch")
	// The device type picks the hosted account prefix: claiming hosted breaks the signature.
	check("device type hosted", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) {
		d, _ := proto.Marshal(&waproto.ADVDeviceIdentity{RawID: proto.Uint32(1234567), Timestamp: proto.Uint64(1700000000), KeyIndex: proto.Uint32(3), DeviceType: waproto.ADVEncryptionType_HOSTED.Enum()})
		s.Details = d
	}), a.adv, ErrSignatureMismatch, 401, "signature-mismatch")
	check("short account key", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignatureKey = s.AccountSignatureKey[:31] }),
		a.adv, ErrInvalidKey, 401, "invalid-key")
	check("missing account key", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignatureKey = nil }),
		a.adv, ErrInvalidKey, 401, "invalid-key")
	check("zero account key", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignatureKey = make([]byte, 32) }),
		a.adv, ErrInvalidKey, 401, "invalid-key")
	check("garbage details", tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) { s.Details = []byte{0xff, 0xff} }),
		a.adv, ErrMalformed, 500, "internal-error")

	check("garbage container", []byte{0x0a, 0x05, 1}, a.adv, ErrMalformed, 500, "internal-error")
	check("empty container", nil, a.adv, ErrMalformed, 500, "internal-error")
	garbageSigned, _ := proto.Marshal(&waproto.ADVSignedDeviceIdentityHMAC{Details: []byte{0x0a, 0x7f}, HMAC: advHMAC(&a.adv, 0, []byte{0x0a, 0x7f})})
	check("garbage signed identity", garbageSigned, a.adv, ErrMalformed, 500, "internal-error")

	// Flip every byte of the container: never accepted.
	for i := range a.container {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(a.container)
			bad[i] ^= bit
			if _, err := VerifyPairSuccess(rand.Reader, a.adv, a.companion, bad); err == nil {
				t.Fatalf("flip byte %d bit %02x: accepted", i, bit)
			}
		}
	}
	// A companion other than the one the phone signed for.
	other, _ := keys.NewKeyPair(rand.Reader)
	if _, err := VerifyPairSuccess(rand.Reader, a.adv, other, a.container); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("other companion: %v", err)
	}
	// Randomness failure while signing is an internal error.
	_, err := VerifyPairSuccess(bytes.NewReader(nil), a.adv, a.companion, a.container)
	if err == nil {
		t.Fatal("empty randomness: no error")
	}
	if c, tx := ErrorReply(err); c != 500 || tx != "internal-error" {
		t.Errorf("ErrorReply(rand failure) = %d %q", c, tx)
	}
	if c, tx := ErrorReply(nil); c != 0 || tx != "" {
		t.Errorf("ErrorReply(nil) = %d %q", c, tx)
	}
}

func TestADVRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		id         DeviceIdentity
		wantPrefix []byte // HMAC input prefix
	}{
		{"e2ee", DeviceIdentity{RawID: 2933087886, Timestamp: 1752020041, KeyIndex: 13}, nil},
		{"hosted", DeviceIdentity{RawID: 7, Timestamp: 1, KeyIndex: 1, AccountType: AccountHosted, DeviceType: int32(AccountHosted)}, prefixHostedAccountSig},
		{"hosted account, e2ee device", DeviceIdentity{RawID: 8, Timestamp: 2, KeyIndex: 2, AccountType: AccountHosted}, prefixHostedAccountSig},
		{"e2ee account, hosted device", DeviceIdentity{RawID: 9, Timestamp: 3, KeyIndex: 3, DeviceType: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			account, _ := keys.NewKeyPair(rand.Reader)
			companion, _ := keys.NewKeyPair(rand.Reader)
			var adv [32]byte
			rand.Read(adv[:])

			c, err := SignDeviceIdentity(rand.Reader, account, companion.Public, adv, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			var pc waproto.ADVSignedDeviceIdentityHMAC
			if err := proto.Unmarshal(c, &pc); err != nil {
				t.Fatal(err)
			}
			if hosted := pc.AccountType != nil && pc.GetAccountType() == waproto.ADVEncryptionType_HOSTED; hosted != (tc.id.AccountType == AccountHosted) {
				t.Errorf("container accountType = %v", pc.AccountType)
			}
			m := hmacInput(pc.GetAccountType(), pc.GetDetails())
			if !bytes.HasPrefix(m, tc.wantPrefix) || len(m) != len(tc.wantPrefix)+len(pc.GetDetails()) {
				t.Errorf("HMAC input prefix wrong")
			}
			// Account-signature prefix follows the device type.
			var s waproto.ADVSignedDeviceIdentity
			proto.Unmarshal(pc.GetDetails(), &s)
			wantAcc := prefixAccountSig
			if tc.id.DeviceType == 1 {
				wantAcc = prefixHostedAccountSig
			}
			if !keys.Verify(account.Public, concat(wantAcc, s.GetDetails(), companion.Public.Bytes()), s.GetAccountSignature()) {
				t.Errorf("account signature not made with prefix %x", wantAcc)
			}

			ver, err := VerifyPairSuccess(rand.Reader, adv, companion, c)
			if err != nil {
				t.Fatal(err)
			}
			if ver.Identity != tc.id || !ver.AccountKey.Equal(account.Public) || ver.HostedAccount != (tc.id.AccountType == AccountHosted) {
				t.Errorf("verified = %+v", ver)
			}
			// The device signature is always 06 01, also for hosted accounts.
			id, err := VerifyDeviceSignature(ver.Reply, companion.Public, account.Public, false)
			if err != nil || id != tc.id {
				t.Fatalf("server check = %+v, %v", id, err)
			}
			if _, err := VerifyDeviceSignature(ver.Reply, companion.Public, account.Public, true); !errors.Is(err, ErrSignatureMismatch) {
				t.Errorf("06 06 check of a 06 01 signature: %v", err)
			}
		})
	}
}

func TestVerifyDeviceSignatureRefusals(t *testing.T) {
	a := loadADV(t)
	ver, err := VerifyPairSuccess(rand.Reader, a.adv, a.companion, a.container)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*waproto.ADVSignedDeviceIdentity)) []byte {
		var s waproto.ADVSignedDeviceIdentity
		if err := proto.Unmarshal(ver.Reply, &s); err != nil {
			t.Fatal(err)
		}
		f(&s)
		b, _ := proto.Marshal(&s)
		return b
	}
	other, _ := keys.NewKeyPair(rand.Reader)
	for _, tc := range []struct {
		name      string
		reply     []byte
		companion keys.PublicKey
		account   keys.PublicKey
		want      error
	}{
		{"device signature", edit(func(s *waproto.ADVSignedDeviceIdentity) { s.DeviceSignature[0] ^= 1 }), a.companion.Public, a.account.Public, ErrSignatureMismatch},
		{"no device signature", edit(func(s *waproto.ADVSignedDeviceIdentity) { s.DeviceSignature = nil }), a.companion.Public, a.account.Public, ErrSignatureMismatch},
		{"account signature", edit(func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignature[0] ^= 1 }), a.companion.Public, a.account.Public, ErrSignatureMismatch},
		{"details", edit(func(s *waproto.ADVSignedDeviceIdentity) { s.Details = append(s.Details, 0x20, 0x01) }), a.companion.Public, a.account.Public, ErrSignatureMismatch},
		{"other account key inside", edit(func(s *waproto.ADVSignedDeviceIdentity) { s.AccountSignatureKey = other.Public.Bytes() }), a.companion.Public, a.account.Public, ErrSignatureMismatch},
		{"other companion", ver.Reply, other.Public, a.account.Public, ErrSignatureMismatch},
		{"other account", ver.Reply, a.companion.Public, other.Public, ErrSignatureMismatch},
		{"zero companion", ver.Reply, keys.PublicKey{}, a.account.Public, ErrInvalidKey},
		{"garbage", []byte{0xff}, a.companion.Public, a.account.Public, ErrMalformed},
		{"no details", edit(func(s *waproto.ADVSignedDeviceIdentity) { s.Details = nil }), a.companion.Public, a.account.Public, ErrMalformed},
		{"garbage details", edit(func(s *waproto.ADVSignedDeviceIdentity) { s.Details = []byte{0x08} }), a.companion.Public, a.account.Public, ErrMalformed},
	} {
		if _, err := VerifyDeviceSignature(tc.reply, tc.companion, tc.account, false); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestSignDeviceIdentityErrors(t *testing.T) {
	a := loadADV(t)
	id := DeviceIdentity{RawID: 1}
	if _, err := SignDeviceIdentity(rand.Reader, keys.KeyPair{}, a.companion.Public, a.adv, id); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("zero account: %v", err)
	}
	if _, err := SignDeviceIdentity(rand.Reader, a.account, keys.PublicKey{}, a.adv, id); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("zero companion: %v", err)
	}
	if _, err := SignDeviceIdentity(bytes.NewReader(nil), a.account, a.companion.Public, a.adv, id); err == nil {
		t.Error("empty randomness: no error")
	}
}

func TestErrorsKeepSecretsOut(t *testing.T) {
	a := loadADV(t)
	secretHex := []string{
		vectors.Str(t, a.v, "adv_pairing", "adv_secret"),
		vectors.Str(t, a.v, "adv_pairing", "companion_identity", "priv"),
	}
	bad := bytes.Clone(a.container)
	bad[len(bad)-3] ^= 1
	_, err1 := VerifyPairSuccess(rand.Reader, a.adv, a.companion, bad)
	_, err2 := NormalizeCode("ABCD-EFG0")
	_, err3 := ParseQR(QR{Ref: "r", AdvSecret: a.adv}.String()[:60])
	for _, err := range []error{err1, err2, err3} {
		if err == nil {
			t.Fatal("want error")
		}
		for _, s := range secretHex {
			if bytes.Contains([]byte(err.Error()), []byte(s)) {
				t.Errorf("error %q leaks a secret", err)
			}
		}
		if bytes.Contains([]byte(err.Error()), []byte("ABCD")) {
			t.Errorf("error %q repeats the code", err)
		}
	}
}

// TestLowOrderAccountKeyRefused: under a low-order key such as u = 1 (an
// order-4 Edwards point) the trivial signature R = identity, s = 0 satisfies
// the verification equation whenever the challenge is a multiple of 4
// (keys.Verify refuses such keys; see keys' TestLowOrderKeysNeverVerify).
// Containers carrying such a key must be refused as invalid-key, for every
// challenge.
func TestLowOrderAccountKeyRefused(t *testing.T) {
	a := loadADV(t)
	lowOrder := append([]byte{1}, make([]byte, 31)...)
	forged := append([]byte{1}, make([]byte, 63)...) // R = identity, s = 0
	u1, _ := keys.PublicKeyFromBytes(lowOrder)
	for raw := uint32(0); raw < 16; raw++ {
		d, _ := proto.Marshal(&waproto.ADVDeviceIdentity{RawID: proto.Uint32(raw), Timestamp: proto.Uint64(1), KeyIndex: proto.Uint32(1)})
		c := tamper(t, a.adv, a.container, func(s *waproto.ADVSignedDeviceIdentity) {
			s.Details, s.AccountSignatureKey, s.AccountSignature = d, lowOrder, forged
		})
		if _, err := VerifyPairSuccess(rand.Reader, a.adv, a.companion, c); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("forged container with a low-order key: err = %v, want ErrInvalidKey", err)
		}
		reply, _ := proto.Marshal(&waproto.ADVSignedDeviceIdentity{Details: d, AccountSignature: forged})
		if _, err := VerifyDeviceSignature(reply, a.companion.Public, u1, false); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("server check with a low-order account key: err = %v", err)
		}
	}
	// Other low-order encodings are refused as well.
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1 ≡ 1
	} {
		pub := keys.MustPublicKey(h)
		if err := checkUsableKey(pub, "k"); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v", h, err)
		}
	}
	if err := checkUsableKey(a.account.Public, "k"); err != nil {
		t.Errorf("real key refused: %v", err)
	}
}
