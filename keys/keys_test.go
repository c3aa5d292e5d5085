package keys_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/keys"
)

func TestXEdDSAVector(t *testing.T) {
	v := vectors.Load(t)
	pub, err := keys.PublicKeyFromBytes(vectors.Hex(t, v, "xeddsa", "signer_identity", "pub"))
	if err != nil {
		t.Fatal(err)
	}
	msg := vectors.Hex(t, v, "xeddsa", "message")
	if !keys.Verify(pub, msg, vectors.Hex(t, v, "xeddsa", "signature")) {
		t.Fatal("valid vector signature refused")
	}
	if keys.Verify(pub, msg, vectors.Hex(t, v, "xeddsa", "tampered_signature")) {
		t.Fatal("tampered vector signature accepted")
	}
	if keys.Verify(pub, msg[1:], vectors.Hex(t, v, "xeddsa", "signature")) {
		t.Fatal("signature over 0x05||pub accepted for the unprefixed key")
	}
	// The signed pre-key in the vector is the 0x05-serialized key.
	spk, _ := keys.PublicKeyFromBytes(vectors.Hex(t, v, "xeddsa", "signed_prekey", "pub"))
	if !bytes.Equal(spk.Serialized(), msg) {
		t.Fatal("Serialized() differs from the vector message")
	}
	// Private → public derivation matches the vector.
	priv, _ := keys.PrivateKeyFromBytes(vectors.Hex(t, v, "xeddsa", "signer_identity", "priv"))
	if !priv.Public().Equal(pub) {
		t.Fatal("public key derivation differs from the vector")
	}
}

func TestADVSignatureVectors(t *testing.T) {
	v := vectors.Load(t)
	acct, _ := keys.PublicKeyFromBytes(vectors.Hex(t, v, "adv_pairing", "primary_account_identity", "pub"))
	if !keys.Verify(acct, vectors.Hex(t, v, "adv_pairing", "account_signature_message"), vectors.Hex(t, v, "adv_pairing", "account_signature")) {
		t.Fatal("account signature vector refused")
	}
	dev, _ := keys.PublicKeyFromBytes(vectors.Hex(t, v, "adv_pairing", "companion_identity", "pub"))
	if !keys.Verify(dev, vectors.Hex(t, v, "adv_pairing", "device_signature_message"), vectors.Hex(t, v, "adv_pairing", "device_signature")) {
		t.Fatal("device signature vector refused")
	}
}

func TestECDHVector(t *testing.T) {
	v := vectors.Load(t)
	cEph, _ := keys.PrivateKeyFromBytes(vectors.Hex(t, v, "pair_code", "companion_ephemeral", "priv"))
	pEph, _ := keys.PublicKeyFromBytes(vectors.Hex(t, v, "pair_code", "primary_ephemeral", "pub"))
	got, err := cEph.ECDH(pEph)
	if err != nil {
		t.Fatal(err)
	}
	if want := vectors.Hex(t, v, "pair_code", "ephemeral_shared_secret"); !bytes.Equal(got, want) {
		t.Fatalf("shared secret %x, want %x", got, want)
	}
	if _, err := cEph.ECDH(keys.PublicKey{}); err == nil {
		t.Fatal("low-order (zero) public key accepted")
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for i := 0; i < 50; i++ {
		kp, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(fmt.Sprintf("message %d", i))
		sig, err := kp.Private.Sign(rand.Reader, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !keys.Verify(kp.Public, msg, sig[:]) {
			t.Fatal("own signature refused")
		}
		sig[i%64] ^= 1 << (i % 8)
		if keys.Verify(kp.Public, msg, sig[:]) {
			t.Fatal("flipped signature accepted")
		}
	}
}

func TestSignedPreKey(t *testing.T) {
	id, _ := keys.NewKeyPair(rand.Reader)
	spk, err := keys.NewSignedPreKey(rand.Reader, id.Private, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !spk.Verify(id.Public) {
		t.Fatal("signed pre-key does not verify")
	}
	pks, err := keys.NewPreKeys(rand.Reader, keys.MaxPreKeyID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if pks[0].ID != keys.MaxPreKeyID || pks[1].ID != 1 || pks[2].ID != 2 {
		t.Fatalf("ids %d %d %d", pks[0].ID, pks[1].ID, pks[2].ID)
	}
}

func TestPrivateKeyRedacted(t *testing.T) {
	kp, _ := keys.NewKeyPair(rand.Reader)
	secretHex := fmt.Sprintf("%x", kp.Private.Bytes())
	for _, s := range []string{fmt.Sprint(kp.Private), fmt.Sprintf("%v %+v %#v %x %s", kp.Private, kp, kp, kp.Private, kp.Private), kp.String()} {
		if bytes.Contains([]byte(s), []byte(secretHex)) {
			t.Fatalf("private key leaked in %q", s)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	kp, _ := keys.NewKeyPair(rand.Reader)
	msg := make([]byte, 100)
	for b.Loop() {
		kp.Private.Sign(rand.Reader, msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	kp, _ := keys.NewKeyPair(rand.Reader)
	msg := make([]byte, 100)
	sig, _ := kp.Private.Sign(rand.Reader, msg)
	for b.Loop() {
		keys.Verify(kp.Public, msg, sig[:])
	}
}

// TestLowOrderKeysNeverVerify: with a low-order public key, the signature
// R = identity, s = 0 would satisfy the verification equation for some
// messages; such keys must never verify anything.
func TestLowOrderKeysNeverVerify(t *testing.T) {
	identity := make([]byte, 64)
	identity[0] = 1 // compressed Edwards identity: y = 1
	lowOrderU := [][]byte{
		make([]byte, 32),                       // u = 0
		append([]byte{1}, make([]byte, 31)...), // u = 1
	}
	pMinus1 := bytes.Repeat([]byte{0xff}, 32)
	pMinus1[0] = 0xec
	pMinus1[31] = 0x7f
	lowOrderU = append(lowOrderU, pMinus1) // u = -1
	for _, u := range lowOrderU {
		pub, _ := keys.PublicKeyFromBytes(u)
		for i := 0; i < 64; i++ {
			msg := []byte{byte(i)}
			for _, sign := range []byte{0, 0x80} {
				sig := append([]byte(nil), identity...)
				sig[63] |= sign
				if keys.Verify(pub, msg, sig) {
					t.Fatalf("forged signature verified under low-order key %x", u)
				}
			}
		}
	}
}
