package postgres

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

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

func openWith(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceWithCipher(t *testing.T) {
	c := testCipher(t, 1)
	storetest.Run(t, func(t *testing.T) store.Store { return openWith(t, testSchema(t), WithCipher(c)) })
}

// TestCipher walks one schema through its life: written in the clear,
// read through a cipher, resealed, then opened with the wrong key, without
// a key and with blobs moved between rows.
func TestCipher(t *testing.T) {
	ctx := t.Context()
	dsn := testSchema(t)
	d := storetest.NewDevice(t, 1, true)
	e := storetest.NewDevice(t, 2, true)
	pks := storetest.NewPreKeys(t, 1, 1, 30)
	clear := openWith(t, dsn)
	for _, x := range []*store.Device{d, e} {
		if err := clear.PutDevice(ctx, x); err != nil {
			t.Fatal(err)
		}
		if err := clear.PutPreKeys(ctx, x.NoiseKey.Public, pks, 31); err != nil {
			t.Fatal(err)
		}
		x.NextPreKeyID = 31
	}
	if err := clear.Reseal(ctx); !errors.Is(err, ErrNoCipher) {
		t.Errorf("Reseal without a cipher: err = %v", err)
	}

	sealed := openWith(t, dsn, WithCipher(testCipher(t, 2)))
	got, err := sealed.Device(ctx, d.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("clear rows through a cipher store: %v", diff)
	}
	if err := sealed.Reseal(ctx); err != nil {
		t.Fatal(err)
	}

	// Nothing in the clear is left in the live rows.
	secrets := [][]byte{d.NoiseKey.Private.Bytes(), d.IdentityKey.Private.Bytes(), d.SignedPreKey.Private.Bytes(), d.AdvSecret[:]}
	for _, pk := range pks {
		secrets = append(secrets, pk.Private.Bytes())
	}
	rows, err := sealed.pool.Query(ctx, `SELECT noise_priv FROM walink_devices UNION ALL SELECT identity_priv FROM walink_devices
		UNION ALL SELECT spk_priv FROM walink_devices UNION ALL SELECT adv_secret FROM walink_devices UNION ALL SELECT priv FROM walink_pre_keys`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		n++
		if len(b) != 1+12+32+16 || b[0] != sealedV1 {
			t.Errorf("a secret column holds %d bytes, not a v1 envelope", len(b))
		}
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Error("a secret is still in the clear")
			}
		}
	}
	rows.Close()
	if n != 4*2+30*2 {
		t.Errorf("checked %d secret columns, want %d", n, 4*2+30*2)
	}
	// The server chain is sealed too: a v1 envelope around the 105-byte
	// ChainV1 encoding, without either certificate key in the clear.
	crows, err := sealed.pool.Query(ctx, `SELECT server_chain FROM walink_devices`)
	if err != nil {
		t.Fatal(err)
	}
	for crows.Next() {
		var b []byte
		if err := crows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		if len(b) != 1+12+105+16 || b[0] != sealedV1 {
			t.Errorf("server_chain holds %d bytes, not a v1 envelope", len(b))
		}
		for _, x := range []*store.Device{d, e} {
			if bytes.Contains(b, x.ServerChain.LeafKey.Bytes()) || bytes.Contains(b, x.ServerChain.IntermediateKey.Bytes()) {
				t.Error("a server chain key is still in the clear")
			}
		}
	}
	crows.Close()
	got, err = sealed.Device(ctx, d.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := storetest.DeviceDiff(d, got); diff != nil {
		t.Errorf("after Reseal: %v", diff)
	}
	if pk, err := sealed.PreKey(ctx, e.NoiseKey.Public, 30); err != nil || !pk.Private.Equal(pks[29].Private) {
		t.Errorf("PreKey after Reseal: %v", err)
	}

	if _, err := clear.Device(ctx, d.NoiseKey.Public); !errors.Is(err, ErrNoCipher) {
		t.Errorf("no cipher: err = %v, want ErrNoCipher", err)
	}
	wrong := openWith(t, dsn, WithCipher(testCipher(t, 3)))
	if _, err := wrong.PreKey(ctx, d.NoiseKey.Public, 1); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong key: err = %v, want ErrDecrypt", err)
	}

	// Moving a sealed blob to another device's row breaks it.
	if _, err := sealed.pool.Exec(ctx, `UPDATE walink_devices SET adv_secret = (SELECT adv_secret FROM walink_devices WHERE noise_pub = $2) WHERE noise_pub = $1`,
		d.NoiseKey.Public.Bytes(), e.NoiseKey.Public.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.Device(ctx, d.NoiseKey.Public); !errors.Is(err, ErrDecrypt) {
		t.Errorf("moved blob: err = %v, want ErrDecrypt", err)
	}
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
