package sqlite

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/walinkdev/walink/store/seal"
	"github.com/walinkdev/walink/store/storetest"
)

// TestPassphraseCipher: a store sealed under a passphrase (Argon2id) opens
// in another process (another salt) with the same passphrase, and refuses
// a wrong one with ErrDecrypt; the file never holds a secret in the clear.
func TestPassphraseCipher(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "p.db")
	c, err := seal.NewPassphrase([]byte("open sesame"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path, WithCipher(c))
	if err != nil {
		t.Fatal(err)
	}
	d := storetest.NewDevice(t, 3, true)
	pks := storetest.NewPreKeys(t, 3, 1, 5)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 6); err != nil {
		t.Fatal(err)
	}
	s.Close()
	scanFile(t, path, secretsOf(d, pks))

	again, err := seal.NewPassphrase([]byte("open sesame"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, WithCipher(again))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Device(ctx, d.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	d.NextPreKeyID = 6 // set by PutPreKeys
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("device under the passphrase: %v", diff)
	}
	if pk, err := s.PreKey(ctx, d.NoiseKey.Public, 3); err != nil || !pk.Private.Equal(pks[2].Private) {
		t.Errorf("pre-key 3: %v", err)
	}
	s.Close()

	wrong, err := seal.NewPassphrase([]byte("open sesame?"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, WithCipher(wrong))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Device(ctx, d.NoiseKey.Public); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong passphrase: err = %v, want ErrDecrypt", err)
	}
}
