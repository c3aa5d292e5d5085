package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

func testCipher(t testing.TB, keyByte byte) Cipher {
	t.Helper()
	c, err := NewAESGCM(bytes.Repeat([]byte{keyByte}, 32), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openWith(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceWithCipher(t *testing.T) {
	c := testCipher(t, 1)
	storetest.Run(t, func(t *testing.T) store.Store { return openWith(t, Memory, WithCipher(c)) })
}

// secretsOf lists every secret of d and its pre-keys, raw.
func secretsOf(d *store.Device, pks []keys.PreKey) [][]byte {
	out := [][]byte{d.NoiseKey.Private.Bytes(), d.IdentityKey.Private.Bytes(), d.SignedPreKey.Private.Bytes(), d.AdvSecret[:]}
	if !d.ServerChain.IsZero() {
		// Public keys, but the server chain is sealed like the secrets.
		out = append(out, d.ServerChain.LeafKey.Bytes(), d.ServerChain.IntermediateKey.Bytes())
	}
	for _, pk := range pks {
		out = append(out, pk.Private.Bytes())
	}
	return out
}

// scanFile fails if any secret appears in the files of the database, raw,
// in hex or in base64.
func scanFile(t *testing.T, path string, secrets [][]byte) {
	t.Helper()
	for _, f := range findSecrets(t, path, secrets) {
		t.Errorf("secret found on disk: %s", f)
	}
}

func findSecrets(t *testing.T, path string, secrets [][]byte) []string {
	t.Helper()
	var found []string
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range secrets {
			for _, form := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s))} {
				if bytes.Contains(b, form) {
					found = append(found, fmt.Sprintf("secret %d in %s", i, filepath.Base(p)))
				}
			}
		}
	}
	return found
}

func TestCipherKeepsSecretsOffDisk(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sealed.db")
	s := openWith(t, path, WithCipher(testCipher(t, 2)))
	d := storetest.NewDevice(t, 1, true)
	pks := storetest.NewPreKeys(t, 1, 1, 20)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 21); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := s.r.QueryRowContext(ctx, `SELECT noise_priv FROM devices`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1+12+32+16 || raw[0] != sealedV1 {
		t.Errorf("noise_priv is %d bytes starting %#x; want a 61-byte v1 envelope", len(raw), raw[0])
	}
	s.Close()
	scanFile(t, path, secretsOf(d, pks))

	t.Run("reopen with the key", func(t *testing.T) {
		s := openWith(t, path, WithCipher(testCipher(t, 2)))
		got, err := s.Device(ctx, d.NoiseKey.Public)
		if err != nil {
			t.Fatal(err)
		}
		d.NextPreKeyID = 21
		if diff := storetest.DeviceDiff(d, got); diff != nil {
			t.Error(diff)
		}
		pk, err := s.PreKey(ctx, d.NoiseKey.Public, 7)
		if err != nil || !pk.Private.Equal(pks[6].Private) {
			t.Errorf("PreKey(7): %v", err)
		}
	})
	t.Run("reopen without a cipher", func(t *testing.T) {
		s := openWith(t, path)
		if _, err := s.Device(ctx, d.NoiseKey.Public); !errors.Is(err, ErrNoCipher) {
			t.Errorf("Device: err = %v, want ErrNoCipher", err)
		}
		if _, err := s.PreKey(ctx, d.NoiseKey.Public, 1); !errors.Is(err, ErrNoCipher) {
			t.Errorf("PreKey: err = %v, want ErrNoCipher", err)
		}
	})
	t.Run("reopen with another key", func(t *testing.T) {
		s := openWith(t, path, WithCipher(testCipher(t, 3)))
		if _, err := s.Device(ctx, d.NoiseKey.Public); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Device: err = %v, want ErrDecrypt", err)
		}
		if _, err := s.PreKey(ctx, d.NoiseKey.Public, 1); !errors.Is(err, ErrDecrypt) {
			t.Errorf("PreKey: err = %v, want ErrDecrypt", err)
		}
	})
}

// TestCipherBindsRowAndColumn moves sealed blobs to another column, another
// device and another pre-key id: each must fail to open.
func TestCipherBindsRowAndColumn(t *testing.T) {
	ctx := t.Context()
	s := openWith(t, Memory, WithCipher(testCipher(t, 4)))
	a := storetest.NewDevice(t, 1, true)
	b := storetest.NewDevice(t, 2, true)
	for _, d := range []*store.Device{a, b} {
		if err := s.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, storetest.NewPreKeys(t, 1, 1, 3), 4); err != nil {
			t.Fatal(err)
		}
	}
	for name, q := range map[string]string{
		"column swap":  `UPDATE devices SET identity_priv = spk_priv WHERE noise_pub = ?1`,
		"row swap":     `UPDATE devices SET noise_priv = (SELECT noise_priv FROM devices WHERE noise_pub = ?2) WHERE noise_pub = ?1`,
		"adv secret":   `UPDATE devices SET adv_secret = (SELECT adv_secret FROM devices WHERE noise_pub = ?2) WHERE noise_pub = ?1`,
		"server chain": `UPDATE devices SET server_chain = (SELECT server_chain FROM devices WHERE noise_pub = ?2) WHERE noise_pub = ?1`,
	} {
		t.Run(name, func(t *testing.T) {
			tx, err := s.w.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, q, a.NoiseKey.Public.Bytes(), b.NoiseKey.Public.Bytes()); err != nil {
				t.Fatal(err)
			}
			var r row
			if err := tx.QueryRowContext(ctx, selectDevice+` WHERE noise_pub = ?`, a.NoiseKey.Public.Bytes()).Scan(r.Dest()...); err != nil {
				t.Fatal(err)
			}
			if _, err := decodeRow(&r, s.sec); !errors.Is(err, ErrDecrypt) {
				t.Errorf("decode: err = %v, want ErrDecrypt", err)
			}
		})
	}
	t.Run("pre-key id swap", func(t *testing.T) {
		if _, err := s.w.ExecContext(ctx, `UPDATE pre_keys SET priv = (SELECT priv FROM pre_keys p WHERE p.device = pre_keys.device AND p.id = 2) WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PreKey(ctx, a.NoiseKey.Public, 1); !errors.Is(err, ErrDecrypt) {
			t.Errorf("PreKey: err = %v, want ErrDecrypt", err)
		}
		if _, err := s.PreKey(ctx, a.NoiseKey.Public, 2); err != nil {
			t.Errorf("untouched PreKey(2): %v", err)
		}
	})
}

// TestReseal: a store written in the clear, reopened with a cipher, reads
// as before, and Reseal leaves no secret in the clear on disk.
func TestReseal(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "clear.db")
	d := storetest.NewDevice(t, 5, true)
	pks := storetest.NewPreKeys(t, 5, 1, 40)
	s := openWith(t, path)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 41); err != nil {
		t.Fatal(err)
	}
	d.NextPreKeyID = 41
	if err := s.Reseal(ctx); !errors.Is(err, ErrNoCipher) {
		t.Errorf("Reseal without a cipher: err = %v", err)
	}
	s.Close()
	// The scan can see secrets: in the clear store it finds every one.
	if n, want := len(findSecrets(t, path, secretsOf(d, pks))), 4+len(pks); n < want {
		t.Fatalf("scan found %d of %d clear secrets; it cannot be trusted", n, want)
	}

	s = openWith(t, path, WithCipher(testCipher(t, 6)))
	got, err := s.Device(ctx, d.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("clear rows through a cipher store: %v", diff)
	}
	if err := s.Reseal(ctx); err != nil {
		t.Fatal(err)
	}
	var clear int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM pre_keys WHERE length(priv) = 32`).Scan(&clear); err != nil || clear != 0 {
		t.Errorf("%d pre-keys still clear after Reseal (%v)", clear, err)
	}
	got, err = s.Device(ctx, d.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("after Reseal: %v", diff)
	}
	if pk, err := s.PreKey(ctx, d.NoiseKey.Public, 40); err != nil || !pk.Private.Equal(pks[39].Private) {
		t.Errorf("PreKey after Reseal: %v", err)
	}
	s.Close()
	scanFile(t, path, secretsOf(d, pks))
}

func TestNewAESGCM(t *testing.T) {
	if _, err := NewAESGCM(make([]byte, 16), rand.Reader); err == nil {
		t.Error("accepted a 16-byte key")
	}
	if _, err := NewAESGCM(make([]byte, 32), nil); err == nil {
		t.Error("accepted a nil randomness source")
	}
	c := testCipher(t, 7)
	x, err := c.Seal([]byte("secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	y, _ := c.Seal([]byte("secret"), []byte("aad"))
	if bytes.Equal(x, y) {
		t.Error("two seals of one secret are equal: nonces repeat")
	}
	for i := range x {
		bad := bytes.Clone(x)
		bad[i] ^= 1
		if _, err := c.Open(bad, []byte("aad")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipped byte %d: err = %v", i, err)
		}
	}
	if _, err := c.Open(x[:10], []byte("aad")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("short input: err = %v", err)
	}
	if pt, err := c.Open(x, []byte("aad")); err != nil || string(pt) != "secret" {
		t.Errorf("Open = %q, %v", pt, err)
	}
}
