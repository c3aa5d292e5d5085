package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	closed  bool
	seq     uint64 // insertion counter, the tie-breaker for "oldest first"
	devices map[[keys.Size]byte]*entry
}

type entry struct {
	seq     uint64
	dev     store.Device
	prekeys map[uint32]keys.PreKey
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{devices: make(map[[keys.Size]byte]*entry)}
}

// errClosed is returned by every method after Close.
var errClosed = fmt.Errorf("memstore: store is closed")

func clone(d *store.Device) *store.Device {
	c := *d
	c.Account = slices.Clone(d.Account)
	return &c
}

func (s *Store) checkLocked(ctx context.Context) error {
	if s.closed {
		return errClosed
	}
	return ctx.Err()
}

// Devices returns every device, oldest first.
func (s *Store) Devices(ctx context.Context) ([]*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	es := make([]*entry, 0, len(s.devices))
	for _, e := range s.devices {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		if c := a.dev.CreatedAt.Compare(b.dev.CreatedAt); c != 0 {
			return c
		}
		return int(a.seq) - int(b.seq)
	})
	out := make([]*store.Device, len(es))
	for i, e := range es {
		out[i] = clone(&e.dev)
	}
	return out, nil
}

// Device returns the device with this noise public key.
func (s *Store) Device(ctx context.Context, noisePub keys.PublicKey) (*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	e, ok := s.devices[noisePub.Array()]
	if !ok {
		return nil, fmt.Errorf("memstore: device %s: %w", noisePub, store.ErrNotFound)
	}
	return clone(&e.dev), nil
}

// DeviceByJID returns the paired device with this JID.
func (s *Store) DeviceByJID(ctx context.Context, id jid.JID) (*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	if !id.IsEmpty() {
		for _, e := range s.devices {
			if e.dev.ID == id || e.dev.LID == id {
				return clone(&e.dev), nil
			}
		}
	}
	return nil, fmt.Errorf("memstore: device %q: %w", id.User, store.ErrNotFound)
}

// PutDevice inserts or replaces the record and the LID mapping.
func (s *Store) PutDevice(ctx context.Context, d *store.Device) error {
	if d == nil || d.NoiseKey.Public.IsZero() {
		return fmt.Errorf("memstore: device without a noise key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return err
	}
	k := d.NoiseKey.Public.Array()
	e, ok := s.devices[k]
	if !ok {
		s.seq++
		e = &entry{seq: s.seq, prekeys: make(map[uint32]keys.PreKey)}
		s.devices[k] = e
	}
	// The LID↔phone mapping is derived from the records (LIDForPhone), so
	// replacing a record replaces its mapping in the same step.
	e.dev = *clone(d)
	return nil
}

// DeleteDevice removes the device, its pre-keys and its LID mapping.
func (s *Store) DeleteDevice(ctx context.Context, noisePub keys.PublicKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return err
	}
	delete(s.devices, noisePub.Array())
	return nil
}

// PutPreKeys stores pre-keys and sets NextPreKeyID.
func (s *Store) PutPreKeys(ctx context.Context, noisePub keys.PublicKey, pks []keys.PreKey, next uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return err
	}
	e, ok := s.devices[noisePub.Array()]
	if !ok {
		return fmt.Errorf("memstore: pre-keys for device %s: %w", noisePub, store.ErrNotFound)
	}
	// Check the whole batch first: a refused batch changes nothing.
	for _, pk := range pks {
		if pk.ID == 0 || pk.ID > keys.MaxPreKeyID {
			return fmt.Errorf("memstore: pre-key id %d out of range", pk.ID)
		}
	}
	for _, pk := range pks {
		e.prekeys[pk.ID] = pk
	}
	e.dev.NextPreKeyID = next
	return nil
}

// PreKey returns one stored pre-key.
func (s *Store) PreKey(ctx context.Context, noisePub keys.PublicKey, id uint32) (keys.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return keys.PreKey{}, err
	}
	if e, ok := s.devices[noisePub.Array()]; ok {
		if pk, ok := e.prekeys[id]; ok {
			return pk, nil
		}
	}
	return keys.PreKey{}, fmt.Errorf("memstore: pre-key %d: %w", id, store.ErrNotFound)
}

// PreKeyCount returns how many pre-keys the device has.
func (s *Store) PreKeyCount(ctx context.Context, noisePub keys.PublicKey) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return 0, err
	}
	if e, ok := s.devices[noisePub.Array()]; ok {
		return len(e.prekeys), nil
	}
	return 0, nil
}

// LIDForPhone returns the LID user mapped to a phone-number user.
func (s *Store) LIDForPhone(ctx context.Context, phone jid.JID) (jid.JID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ctx); err != nil {
		return jid.JID{}, err
	}
	if phone.User != "" {
		for _, e := range s.devices {
			d := &e.dev
			if d.ID.User == phone.User && d.ID.Server == phone.Server && !d.LID.IsEmpty() {
				return d.LID.ToNonAD(), nil
			}
		}
	}
	return jid.JID{}, fmt.Errorf("memstore: lid for %q: %w", phone.User, store.ErrNotFound)
}

// Close marks the store closed; later calls fail. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
