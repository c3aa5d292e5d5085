package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestAESGCM(t *testing.T) {
	if _, err := NewAESGCM(make([]byte, 16), rand.Reader); !errors.Is(err, ErrBadKey) {
		t.Errorf("16-byte key: %v", err)
	}
	c, err := NewAESGCM(bytes.Repeat([]byte{7}, 32), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, func(int) bool { return true })
}

// roundTrip checks c; flip says which bytes to flip (each salt byte
// flipped costs a key derivation in the passphrase cipher).
func roundTrip(t *testing.T, c Cipher, flip func(i int) bool) []byte {
	t.Helper()
	x, err := c.Seal([]byte("secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if y, _ := c.Seal([]byte("secret"), []byte("aad")); bytes.Equal(x, y) {
		t.Error("two seals are equal: nonce reused")
	}
	if pt, err := c.Open(x, []byte("aad")); err != nil || string(pt) != "secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := c.Open(x, []byte("other")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("other aad: %v", err)
	}
	for i := range x {
		if !flip(i) {
			continue
		}
		bad := bytes.Clone(x)
		bad[i] ^= 0x80
		if _, err := c.Open(bad, []byte("aad")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for n := 0; n < len(x); n += 7 {
		if _, err := c.Open(x[:n], []byte("aad")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	return x
}

func TestPassphrase(t *testing.T) {
	a, err := NewPassphrase([]byte("correct horse"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x := roundTrip(t, a, func(i int) bool { return i == 0 || i == 5 || i > 16 })
	if len(x) != 1+16+12+6+16 || x[0] != passV1 {
		t.Fatalf("envelope %d bytes, version %#x", len(x), x[0])
	}
	// Another process (another salt) with the same passphrase opens it.
	b, err := NewPassphrase([]byte("correct horse"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Open(x, []byte("aad")); err != nil || string(pt) != "secret" {
		t.Fatalf("second instance: %q, %v", pt, err)
	}
	wrong, err := NewPassphrase([]byte("correct horse!"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Open(x, []byte("aad")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := NewPassphrase(nil, rand.Reader); !errors.Is(err, ErrBadKey) {
		t.Errorf("empty passphrase: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	ref, _ := NewAESGCM(key, rand.Reader)
	sealed, _ := ref.Seal([]byte("s"), nil)
	opens := func(t *testing.T, c Cipher) {
		t.Helper()
		if pt, err := c.Open(sealed, nil); err != nil || string(pt) != "s" {
			t.Errorf("cipher from env does not open the reference: %v", err)
		}
	}
	for name, getenv := range map[string]func(string) string{
		"hex":       env(EnvKey, hex.EncodeToString(key)),
		"base64":    env(EnvKey, " "+base64.StdEncoding.EncodeToString(key)+"\n"),
		"raw-url":   env(EnvKey, base64.RawURLEncoding.EncodeToString(key)),
		"file-raw":  env(EnvKeyFile, write("raw.key", key, 0o600)),
		"file-text": env(EnvKeyFile, write("hex.key", []byte(hex.EncodeToString(key)+"\n"), 0o400)),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := FromEnv(getenv, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			opens(t, c)
		})
	}
	if c, err := FromEnv(env(), rand.Reader); c != nil || err != nil {
		t.Errorf("nothing set: %v, %v", c, err)
	}
	if _, err := FromEnv(env(EnvKey, hex.EncodeToString(key), EnvPassphrase, "x"), rand.Reader); !errors.Is(err, ErrAmbiguousKey) {
		t.Errorf("two sources: %v", err)
	}
	bad := "not-a-key-0123456789"
	if _, err := FromEnv(env(EnvKey, bad), rand.Reader); !errors.Is(err, ErrBadKey) || strings.Contains(err.Error(), bad) {
		t.Errorf("bad key: %v (must not echo the key)", err)
	}
	if runtime.GOOS != "windows" {
		p := write("open.key", key, 0o644)
		if _, err := FromEnv(env(EnvKeyFile, p), rand.Reader); !errors.Is(err, ErrInsecureFile) {
			t.Errorf("0644 key file: %v", err)
		}
	}
	// A passphrase file's trailing newline is not part of it.
	pc, err := FromEnv(env(EnvPassphraseFile, write("pass", []byte("hunter2\n"), 0o600)), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := pc.Seal([]byte("s"), nil)
	direct, err := FromEnv(env(EnvPassphrase, "hunter2"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Open(x, nil); err != nil {
		t.Errorf("passphrase from file differs from the same passphrase in the env: %v", err)
	}
}
