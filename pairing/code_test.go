package pairing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/walinkdev/walink/internal/vectors"
	"github.com/walinkdev/walink/keys"
)

func kp(t testing.TB, v map[string]any, path ...string) keys.KeyPair {
	t.Helper()
	k, err := keys.KeyPairFromPrivate(vectors.Hex(t, v, append(path, "priv")...))
	if err != nil {
		t.Fatal(err)
	}
	if want := vectors.Hex(t, v, append(path, "pub")...); !bytes.Equal(k.Public.Bytes(), want) {
		t.Fatalf("%v: public key %x, want %x", path, k.Public.Bytes(), want)
	}
	return k
}

func TestCodeVector(t *testing.T) {
	v := vectors.Load(t)
	raw := vectors.Hex(t, v, "pair_code", "code_random_5_bytes")
	code, err := NewCode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if want := vectors.Str(t, v, "pair_code", "code_8_chars"); code != want {
		t.Fatalf("NewCode = %q, want %q", code, want)
	}
	shown, err := FormatCode(code)
	if err != nil || shown != vectors.Str(t, v, "pair_code", "code_as_displayed_by_whatsmeow") {
		t.Fatalf("FormatCode = %q, %v", shown, err)
	}
}

func TestEncodeCodeBits(t *testing.T) {
	for _, tc := range []struct {
		in   [5]byte
		want string
	}{
		{[5]byte{}, "11111111"},
		{[5]byte{0xff, 0xff, 0xff, 0xff, 0xff}, "ZZZZZZZZ"},
		{[5]byte{0x80, 0, 0, 0, 0}, "H1111111"}, // top bit → index 16 in the first symbol
		{[5]byte{0, 0, 0, 0, 1}, "11111112"},
	} {
		if got := EncodeCode(tc.in); got != tc.want {
			t.Errorf("EncodeCode(%x) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Every symbol is reachable and every code normalizes to itself.
	seen := map[byte]bool{}
	for i := 0; i < 200; i++ {
		c, err := NewCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := NormalizeCode(c); err != nil || n != c {
			t.Fatalf("NormalizeCode(%q) = %q, %v", c, n, err)
		}
		for j := range len(c) {
			seen[c[j]] = true
		}
	}
	if len(seen) != 32 {
		t.Errorf("saw %d symbols in 1600, want 32", len(seen))
	}
}

func TestNewCodeShortRead(t *testing.T) {
	if _, err := NewCode(bytes.NewReader([]byte{1, 2})); err == nil {
		t.Fatal("want error on short randomness")
	}
}

func TestNormalizeCode(t *testing.T) {
	good := map[string]string{
		"12345678":    "12345678",
		"1234-5678":   "12345678",
		"abcd-efgh":   "ABCDEFGH",
		" 1234 5678 ": "12345678",
		"zzzz zzzz":   "ZZZZZZZZ",
		"LLLL-LLLL":   "LLLLLLLL",
	}
	for in, want := range good {
		got, err := NormalizeCode(in)
		if err != nil || got != want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1234567", "123456789", "1234--5678", "1234-56-78", "0234-5678", "I234-5678",
		"O2345678", "U2345678", "1234_5678", "1234\x005678", "1234567é"} {
		if _, err := NormalizeCode(in); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("NormalizeCode(%q) err = %v, want ErrInvalidCode", in, err)
		}
	}
}

func TestWrapKeyVectors(t *testing.T) {
	v := vectors.Load(t)
	code := vectors.Str(t, v, "pair_code", "code_8_chars")
	salt := vectors.Hex(t, v, "pair_code", "companion_wrap_salt")
	iv := vectors.Hex(t, v, "pair_code", "companion_wrap_iv")
	compEph := kp(t, v, "pair_code", "companion_ephemeral")

	key, err := CodeKey(code, salt)
	if err != nil {
		t.Fatal(err)
	}
	if want := vectors.Hex(t, v, "pair_code", "companion_wrap_key"); !bytes.Equal(key[:], want) {
		t.Fatalf("CodeKey = %x, want %x", key, want)
	}

	want := vectors.Hex(t, v, "pair_code", "companion_wrapped_ephemeral_80")
	// The exported, randomized WrapKey with the vector's salt and IV as its randomness.
	got, err := WrapKey(bytes.NewReader(append(append([]byte{}, salt...), iv...)), code, compEph.Public)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("WrapKey =\n%x\nwant\n%x", got, want)
	}
	got2, err := WrapKeyWith("1234-5678", [32]byte(salt), [16]byte(iv), compEph.Public)
	if err != nil || !bytes.Equal(got2, want) {
		t.Fatalf("WrapKeyWith = %x, %v", got2, err)
	}

	// The primary unwraps the companion's key, and the companion the primary's.
	pub, err := UnwrapKey(code, want)
	if err != nil || !pub.Equal(compEph.Public) {
		t.Fatalf("UnwrapKey(companion) = %v, %v", pub, err)
	}
	primEph := kp(t, v, "pair_code", "primary_ephemeral")
	pub, err = UnwrapKey(code, vectors.Hex(t, v, "pair_code", "primary_wrapped_ephemeral_80"))
	if err != nil || !pub.Equal(primEph.Public) {
		t.Fatalf("UnwrapKey(primary) = %v, %v", pub, err)
	}

	// A wrong code gives a different key, not an error.
	pub, err = UnwrapKey("ZZZZZZZZ", want)
	if err != nil || pub.Equal(compEph.Public) {
		t.Fatalf("UnwrapKey with wrong code = %v, %v", pub, err)
	}
}

func TestWrapKeyErrors(t *testing.T) {
	pub := keys.MustPublicKey("dde16ae155e47c48459d750cbad021f3da5b562209e73dbd26b06506045db46d")
	if _, err := WrapKey(rand.Reader, "bad", pub); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("bad code: %v", err)
	}
	if _, err := WrapKey(bytes.NewReader(make([]byte, 40)), "12345678", pub); err == nil {
		t.Errorf("short randomness: no error")
	}
	for _, n := range []int{0, 79, 81, 160} {
		_, err := UnwrapKey("12345678", make([]byte, n))
		var pe *ParseError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) {
			t.Errorf("UnwrapKey(%d bytes) err = %v", n, err)
		}
	}
	if _, err := UnwrapKey("nope", make([]byte, 80)); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("UnwrapKey bad code: %v", err)
	}
	if _, err := CodeKey("12345678", make([]byte, 16)); !errors.Is(err, ErrMalformed) {
		t.Errorf("CodeKey 16-byte salt: %v", err)
	}
}

func TestCompanionFinishVector(t *testing.T) {
	v := vectors.Load(t)
	compEph := kp(t, v, "pair_code", "companion_ephemeral")
	compID := kp(t, v, "pair_code", "companion_identity")
	primEph := kp(t, v, "pair_code", "primary_ephemeral")
	primID := kp(t, v, "pair_code", "primary_identity")
	salt := vectors.Hex(t, v, "pair_code", "key_bundle_salt")
	nonce := vectors.Hex(t, v, "pair_code", "key_bundle_nonce")
	advRandom := vectors.Hex(t, v, "pair_code", "adv_random")
	wantBundle := vectors.Hex(t, v, "pair_code", "wrapped_key_bundle_156")
	wantAdv := vectors.Hex(t, v, "pair_code", "adv_secret_hkdf")

	// Intermediate values.
	eph, _ := compEph.Private.ECDH(primEph.Public)
	if want := vectors.Hex(t, v, "pair_code", "ephemeral_shared_secret"); !bytes.Equal(eph, want) {
		t.Fatalf("ephemeral shared = %x", eph)
	}
	id, _ := compID.Private.ECDH(primID.Public)
	if want := vectors.Hex(t, v, "pair_code", "identity_shared_secret"); !bytes.Equal(id, want) {
		t.Fatalf("identity shared = %x", id)
	}

	// The exported function, randomness = salt || nonce || advRandom.
	rnd := bytes.NewReader(bytes.Join([][]byte{salt, nonce, advRandom}, nil))
	bundle, adv, err := CompanionFinish(rnd, compEph.Private, compID, primEph.Public, primID.Public)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bundle, wantBundle) {
		t.Fatalf("bundle =\n%x\nwant\n%x", bundle, wantBundle)
	}
	if !bytes.Equal(adv[:], wantAdv) {
		t.Fatalf("adv secret = %x, want %x", adv, wantAdv)
	}

	got, err := PrimaryOpenBundle(primEph.Private, primID, compEph.Public, compID.Public, wantBundle)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:], wantAdv) {
		t.Fatalf("primary adv secret = %x, want %x", got, wantAdv)
	}
}

func TestBundleKeyAndPlaintextVector(t *testing.T) {
	v := vectors.Load(t)
	eph := vectors.Hex(t, v, "pair_code", "ephemeral_shared_secret")
	salt := vectors.Hex(t, v, "pair_code", "key_bundle_salt")
	key, err := bundleKey(eph, salt)
	if err != nil {
		t.Fatal(err)
	}
	if want := vectors.Hex(t, v, "pair_code", "key_bundle_encryption_key_hkdf"); !bytes.Equal(key, want) {
		t.Fatalf("bundle key = %x, want %x", key, want)
	}
	aead, err := bundleAEAD(eph, salt)
	if err != nil {
		t.Fatal(err)
	}
	bundle := vectors.Hex(t, v, "pair_code", "wrapped_key_bundle_156")
	plain, err := aead.Open(nil, bundle[32:44], bundle[44:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := vectors.Hex(t, v, "pair_code", "key_bundle_plaintext_96"); !bytes.Equal(plain, want) {
		t.Fatalf("plaintext = %x", plain)
	}
}

func TestPairCodeRoundTripAndRefusals(t *testing.T) {
	newKP := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	compEph, compID, primEph, primID := newKP(), newKP(), newKP(), newKP()
	code, err := NewCode(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Stage 1: companion wraps, primary unwraps; primary wraps back.
	w1, err := WrapKey(rand.Reader, code, compEph.Public)
	if err != nil {
		t.Fatal(err)
	}
	gotCompEph, err := UnwrapKey(code, w1)
	if err != nil || !gotCompEph.Equal(compEph.Public) {
		t.Fatal("primary could not unwrap")
	}
	w2, err := WrapKey(rand.Reader, code, primEph.Public)
	if err != nil {
		t.Fatal(err)
	}
	gotPrimEph, err := UnwrapKey(code, w2)
	if err != nil || !gotPrimEph.Equal(primEph.Public) {
		t.Fatal("companion could not unwrap")
	}
	bundle, adv, err := CompanionFinish(rand.Reader, compEph.Private, compID, gotPrimEph, primID.Public)
	if err != nil {
		t.Fatal(err)
	}
	if len(bundle) != KeyBundleSize {
		t.Fatalf("bundle is %d bytes", len(bundle))
	}
	adv2, err := PrimaryOpenBundle(primEph.Private, primID, gotCompEph, compID.Public, bundle)
	if err != nil || adv2 != adv {
		t.Fatalf("primary adv secret differs: %v", err)
	}

	// Every flipped byte is refused.
	for i := range bundle {
		bad := bytes.Clone(bundle)
		bad[i] ^= 0x40
		if _, err := PrimaryOpenBundle(primEph.Private, primID, gotCompEph, compID.Public, bad); !errors.Is(err, ErrBundleMismatch) {
			t.Fatalf("flip byte %d: err = %v", i, err)
		}
	}
	// Another companion identity than the bundle names.
	if _, err := PrimaryOpenBundle(primEph.Private, primID, gotCompEph, newKP().Public, bundle); !errors.Is(err, ErrBundleMismatch) {
		t.Errorf("other companion identity: %v", err)
	}
	// Another primary identity than the bundle names.
	if _, err := PrimaryOpenBundle(primEph.Private, newKP(), gotCompEph, compID.Public, bundle); !errors.Is(err, ErrBundleMismatch) {
		t.Errorf("other primary identity: %v", err)
	}
	// Lengths and keys.
	for _, n := range []int{0, 155, 157} {
		if _, err := PrimaryOpenBundle(primEph.Private, primID, gotCompEph, compID.Public, make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("bundle of %d bytes: %v", n, err)
		}
	}
	if _, _, err := CompanionFinish(rand.Reader, compEph.Private, compID, keys.PublicKey{}, primID.Public); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("zero primary ephemeral: %v", err)
	}
	lowOrder, _ := keys.PublicKeyFromBytes(append([]byte{1}, make([]byte, 31)...)) // u = 1 is low order
	if _, _, err := CompanionFinish(rand.Reader, compEph.Private, compID, lowOrder, primID.Public); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, keys.ErrLowOrder) {
		t.Errorf("low-order primary ephemeral: %v", err)
	}
	if _, _, err := CompanionFinish(rand.Reader, keys.PrivateKey{}, compID, primEph.Public, primID.Public); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("zero companion ephemeral: %v", err)
	}
	if _, _, err := CompanionFinish(bytes.NewReader(make([]byte, 50)), compEph.Private, compID, primEph.Public, primID.Public); err == nil {
		t.Errorf("short randomness: no error")
	}
	if _, err := PrimaryOpenBundle(keys.PrivateKey{}, primID, gotCompEph, compID.Public, bundle); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("zero primary ephemeral private: %v", err)
	}
}
