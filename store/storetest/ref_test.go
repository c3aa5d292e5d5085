package storetest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

// refStore is the smallest store that passes the suite: a map under a
// mutex. It checks that the suite asks for the semantics the package doc
// states and nothing tied to SQL.
type refStore struct {
	mu      sync.Mutex
	seq     int
	devices map[keys.PublicKey]*refDevice
}

type refDevice struct {
	seq     int
	d       store.Device
	preKeys map[uint32]keys.PreKey
}

var _ store.Store = (*refStore)(nil)

func newRefStore() *refStore { return &refStore{devices: map[keys.PublicKey]*refDevice{}} }

func copyDevice(d *store.Device) *store.Device {
	c := *d
	c.Account = bytes.Clone(d.Account)
	return &c
}

func notFound(what string) error { return fmt.Errorf("ref: %s: %w", what, store.ErrNotFound) }

// sortedLocked returns the devices oldest first, insertion order breaking ties.
func (s *refStore) sortedLocked() []*refDevice {
	var out []*refDevice
	for _, rd := range s.devices {
		out = append(out, rd)
	}
	less := func(a, b *refDevice) bool {
		if !a.d.CreatedAt.Equal(b.d.CreatedAt) {
			return a.d.CreatedAt.Before(b.d.CreatedAt)
		}
		return a.seq < b.seq
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && less(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (s *refStore) Devices(ctx context.Context) ([]*store.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*store.Device{}
	for _, rd := range s.sortedLocked() {
		out = append(out, copyDevice(&rd.d))
	}
	return out, nil
}

func (s *refStore) Device(ctx context.Context, pub keys.PublicKey) (*store.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rd, ok := s.devices[pub]
	if !ok {
		return nil, notFound("device")
	}
	return copyDevice(&rd.d), nil
}

func (s *refStore) DeviceByJID(ctx context.Context, id jid.JID) (*store.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *refDevice
	for _, rd := range s.devices {
		if id.IsEmpty() || (rd.d.ID != id && rd.d.LID != id) {
			continue
		}
		if best == nil || rd.seq > best.seq {
			best = rd
		}
	}
	if best == nil {
		return nil, notFound("device by jid")
	}
	return copyDevice(&best.d), nil
}

func (s *refStore) PutDevice(ctx context.Context, d *store.Device) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d == nil || d.NoiseKey.Public.IsZero() {
		return errors.New("ref: invalid device")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rd, ok := s.devices[d.NoiseKey.Public]
	if !ok {
		s.seq++
		rd = &refDevice{seq: s.seq, preKeys: map[uint32]keys.PreKey{}}
		s.devices[d.NoiseKey.Public] = rd
	}
	rd.d = *copyDevice(d)
	return nil
}

func (s *refStore) DeleteDevice(ctx context.Context, pub keys.PublicKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.devices, pub)
	return nil
}

func (s *refStore) PutPreKeys(ctx context.Context, pub keys.PublicKey, pks []keys.PreKey, next uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, pk := range pks {
		if pk.ID == 0 || pk.ID > keys.MaxPreKeyID {
			return errors.New("ref: pre-key id out of range")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rd, ok := s.devices[pub]
	if !ok {
		return notFound("put pre-keys")
	}
	for _, pk := range pks {
		rd.preKeys[pk.ID] = pk
	}
	rd.d.NextPreKeyID = next
	return nil
}

func (s *refStore) PreKey(ctx context.Context, pub keys.PublicKey, id uint32) (keys.PreKey, error) {
	if err := ctx.Err(); err != nil {
		return keys.PreKey{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rd, ok := s.devices[pub]; ok {
		if pk, ok := rd.preKeys[id]; ok {
			return pk, nil
		}
	}
	return keys.PreKey{}, notFound("pre-key")
}

func (s *refStore) PreKeyCount(ctx context.Context, pub keys.PublicKey) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rd, ok := s.devices[pub]; ok {
		return len(rd.preKeys), nil
	}
	return 0, nil
}

// LIDForPhone derives the mapping from the devices themselves: it belongs
// to the device, so re-linking, unpairing or deleting it drops it.
func (s *refStore) LIDForPhone(ctx context.Context, phone jid.JID) (jid.JID, error) {
	if err := ctx.Err(); err != nil {
		return jid.JID{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *refDevice
	for _, rd := range s.devices {
		if phone.User == "" || rd.d.ID.User != phone.User || rd.d.LID.User == "" {
			continue
		}
		if best == nil || rd.seq > best.seq {
			best = rd
		}
	}
	if best == nil {
		return jid.JID{}, notFound("lid for phone")
	}
	return jid.New(best.d.LID.User, best.d.LID.Server), nil
}

func (s *refStore) Close() error { return nil }

func TestReferenceStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newRefStore() })
}

func TestDeviceDiff(t *testing.T) {
	a := storetest.NewDevice(t, 1, true)
	if d := storetest.DeviceDiff(a, copyDevice(a)); d != nil {
		t.Errorf("identical devices differ: %v", d)
	}
	b := copyDevice(a)
	b.AdvSecret[0] ^= 1
	b.PushName = "x"
	b.LinkedAt = b.LinkedAt.UTC() // same instant: not a difference
	d := storetest.DeviceDiff(a, b)
	if len(d) != 2 {
		t.Fatalf("DeviceDiff = %v, want AdvSecret and PushName", d)
	}
	if d[0] != "AdvSecret" {
		t.Errorf("secret field reported as %q; it must be named only", d[0])
	}
	if storetest.DeviceDiff(nil, nil) != nil || storetest.DeviceDiff(a, nil) == nil {
		t.Error("nil handling")
	}
	if c := storetest.NewDevice(t, 2, true); c.NoiseKey.Public.Equal(a.NoiseKey.Public) || c.ID == a.ID {
		t.Error("different seeds gave the same device")
	}
	if c := storetest.NewDevice(t, 1, true); storetest.DeviceDiff(a, c) != nil {
		t.Error("one seed gave different devices")
	}
}
