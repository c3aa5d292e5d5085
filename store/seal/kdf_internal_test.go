package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"
)

type kdfCall struct {
	time, memory uint32
	lanes        uint8
	keyLen       uint32
}

// watchKDF replaces the Argon2id call for the test with one that records
// its parameters (and still derives, so results stay real).
func watchKDF(t testing.TB) func() []kdfCall {
	t.Helper()
	var mu sync.Mutex
	var calls []kdfCall
	orig := argonIDKey
	argonIDKey = func(pass, salt []byte, tm, mem uint32, lanes uint8, n uint32) []byte {
		mu.Lock()
		calls = append(calls, kdfCall{tm, mem, lanes, n})
		mu.Unlock()
		// Cheap but real: the same function with minimal cost, so the
		// test does not spend 64 MiB per tampered salt.
		return argon2.IDKey(pass, salt, 1, 8, 1, n)
	}
	t.Cleanup(func() { argonIDKey = orig })
	return func() []kdfCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]kdfCall(nil), calls...)
	}
}

// TestTamperedEnvelopeCannotInflateKDF: whatever a sealed value holds, Open
// derives with the fixed version-1 parameters or not at all. A tampered
// version byte is refused without any derivation, a tampered salt costs
// one derivation at the fixed cost, and the cache of derived keys stays
// bounded however many salts an attacker plants.
func TestTamperedEnvelopeCannotInflateKDF(t *testing.T) {
	calls := watchKDF(t)
	c, err := NewPassphrase([]byte("pw"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	want := kdfCall{argonTime, argonMemory, argonLanes, KeySize}
	if got := calls(); len(got) != 1 || got[0] != want {
		t.Fatalf("NewPassphrase derived %+v, want one %+v", got, want)
	}
	x, err := c.Seal([]byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}

	// Every other version byte: refused with ErrDecrypt, no derivation.
	for v := 0; v < 256; v++ {
		if v == passV1 {
			continue
		}
		bad := bytes.Clone(x)
		bad[0] = byte(v)
		if _, err := c.Open(bad, nil); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("version %#x: %v", v, err)
		}
	}
	if n := len(calls()); n != 1 {
		t.Fatalf("tampered version bytes caused %d derivations", n-1)
	}

	// Planted salts (and any bytes after them): one fixed-cost derivation
	// each, ErrDecrypt, and at most maxCachedSalts keys kept.
	for i := range 3 * maxCachedSalts {
		bad := bytes.Clone(x)
		bad[1] ^= byte(i + 1)
		bad[2] = byte(i >> 8)
		if _, err := c.Open(bad, nil); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("salt %d: %v", i, err)
		}
	}
	got := calls()
	if len(got) != 1+3*maxCachedSalts {
		t.Errorf("%d derivations for %d planted salts", len(got)-1, 3*maxCachedSalts)
	}
	for _, k := range got {
		if k != want {
			t.Fatalf("derived with %+v, want %+v", k, want)
		}
	}
	p := c.(*passCipher)
	p.mu.Lock()
	cached := len(p.keys)
	p.mu.Unlock()
	if cached > maxCachedSalts {
		t.Errorf("%d derived keys cached, limit %d", cached, maxCachedSalts)
	}
	// Short envelopes never reach the KDF either.
	before := len(calls())
	for n := 0; n <= 1+saltSize; n++ {
		if _, err := c.Open(x[:n], nil); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	if len(calls()) != before {
		t.Error("a short envelope caused a derivation")
	}
	// The value itself still opens.
	if pt, err := c.Open(x, nil); err != nil || string(pt) != "secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
}

// FuzzOpen: arbitrary sealed values never panic and never open, under
// either cipher, and an error is always ErrDecrypt.
func FuzzOpen(f *testing.F) {
	watchKDF(f)
	key := bytes.Repeat([]byte{7}, KeySize)
	g, err := NewAESGCM(key, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	p, err := NewPassphrase([]byte("pw"), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []Cipher{g, p} {
		x, err := c.Seal([]byte("secret"), []byte("aad"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(x, []byte("aad"))
		f.Add(x[:len(x)-1], []byte("aad"))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{passV1}, []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		for _, c := range []Cipher{g, p} {
			pt, err := c.Open(sealed, aad)
			if err == nil {
				// Only a value sealed by this key opens; the seeds above
				// are such values, so re-seal and compare instead of
				// failing on them.
				if string(pt) != "secret" || !bytes.Equal(aad, []byte("aad")) {
					t.Fatalf("forged value opened: %q", pt)
				}
				continue
			}
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
		}
	})
}

// FuzzParseKey: arbitrary key text never panics, gives 32 bytes or
// ErrBadKey, and the error never echoes the input.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"abababababababababababababababababababababababababababababababab",
		"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",
		"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s",
		" q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",
		"short", "",
		string(bytes.Repeat([]byte{0xab}, 32)),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKey(b)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
			if len(b) >= 8 && bytes.Contains([]byte(err.Error()), b) {
				t.Fatalf("error echoes the key: %v", err)
			}
			return
		}
		if len(k) != KeySize {
			t.Fatalf("%d-byte key", len(k))
		}
	})
}
