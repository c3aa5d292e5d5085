package memstore

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

func newDevice(t *testing.T, created time.Time) *store.Device {
	t.Helper()
	nk, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &store.Device{NoiseKey: nk, CreatedAt: created, NextPreKeyID: 1}
}

func TestRoundTripAndIsolation(t *testing.T) {
	ctx := context.Background()
	s := New()
	t0 := time.Unix(1000, 0)
	a, b := newDevice(t, t0.Add(time.Second)), newDevice(t, t0)
	a.Account = []byte{1, 2, 3}
	for _, d := range []*store.Device{a, b} {
		if err := s.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	a.Account[0] = 9 // must not reach the stored copy
	got, err := s.Device(ctx, a.NoiseKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	if got.Account[0] != 1 {
		t.Fatalf("stored record aliased the caller's slice")
	}
	all, err := s.Devices(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Devices = %d, %v", len(all), err)
	}
	if !all[0].NoiseKey.Public.Equal(b.NoiseKey.Public) {
		t.Fatalf("Devices not oldest first")
	}
}

func TestPairedLookupAndDelete(t *testing.T) {
	ctx := context.Background()
	s := New()
	d := newDevice(t, time.Unix(1, 0))
	d.ID = jid.NewAD("15551234567", 3, jid.DefaultUserServer)
	d.LID = jid.NewAD("123456789012345", 3, jid.LIDServer)
	if err := s.PutDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeviceByJID(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeviceByJID(ctx, d.ID.ToNonAD()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("device part ignored: %v", err)
	}
	lid, err := s.LIDForPhone(ctx, d.ID.ToNonAD())
	if err != nil || lid != d.LID.ToNonAD() {
		t.Fatalf("LIDForPhone = %v, %v", lid, err)
	}
	pks, err := keys.NewPreKeys(rand.Reader, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 4); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.PreKeyCount(ctx, d.NoiseKey.Public); n != 3 {
		t.Fatalf("PreKeyCount = %d", n)
	}
	got, _ := s.Device(ctx, d.NoiseKey.Public)
	if got.NextPreKeyID != 4 {
		t.Fatalf("NextPreKeyID = %d", got.NextPreKeyID)
	}
	if err := s.DeleteDevice(ctx, d.NoiseKey.Public); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx, d.NoiseKey.Public); err != nil {
		t.Fatalf("deleting an absent device: %v", err)
	}
	if _, err := s.PreKey(ctx, d.NoiseKey.Public, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pre-key survived delete: %v", err)
	}
	if _, err := s.LIDForPhone(ctx, d.ID.ToNonAD()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mapping survived delete: %v", err)
	}
	_ = s.Close()
	if _, err := s.Devices(ctx); err == nil {
		t.Fatal("use after Close succeeded")
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
