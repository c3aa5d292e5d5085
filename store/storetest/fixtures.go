package storetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// seeded returns a deterministic randomness source, so a failing run can be
// replayed exactly.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// NewDevice returns a device with fresh keys drawn from a generator seeded
// with seed. When paired is true every field is set to a non-zero value
// (JIDs derived from the seed, so devices made from different seeds do not
// collide); otherwise only the keys, registration id, adv secret,
// NextPreKeyID and CreatedAt are set, as before pairing.
func NewDevice(tb testing.TB, seed uint64, paired bool) *store.Device {
	tb.Helper()
	r := seeded(seed)
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(r)
		if err != nil {
			tb.Fatalf("storetest: %v", err)
		}
		return k
	}
	d := &store.Device{
		NoiseKey:       kp(),
		IdentityKey:    kp(),
		RegistrationID: uint32(r.Uint64()>>40) + 1,
		NextPreKeyID:   1,
		// A fixed zone other than UTC catches stores that lose or mangle
		// the instant when the location changes.
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 5*3600)).Add(time.Duration(seed) * time.Second),
	}
	spk, err := keys.NewSignedPreKey(r, d.IdentityKey.Private, uint32(seed%keys.MaxPreKeyID)+1)
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	d.SignedPreKey = spk
	r.Read(d.AdvSecret[:])
	if !paired {
		return d
	}
	phone := fmt.Sprintf("1555%07d", seed%10_000_000)
	lid := fmt.Sprintf("%d", 100_000_000_000_000+seed)
	devNum := uint16(seed%90) + 2
	d.ID = jid.NewAD(phone, devNum, jid.DefaultUserServer)
	d.LID = jid.NewAD(lid, devNum, jid.LIDServer)
	d.Account = make([]byte, 150)
	r.Read(d.Account)
	d.PrimaryIdentity = kp().Public
	d.BusinessName = "Büro ☕ GmbH"
	d.PushName = fmt.Sprintf("tester %d 'quoted' \"twice\"", seed)
	d.Platform = "android"
	d.LinkedAt = time.Date(2026, 11, 25, 10, 0, 0, 987654321, time.FixedZone("Y", -3*3600))
	d.ClockOffset = -1234567891 * time.Nanosecond
	d.ServerURL = "wss://127.0.0.1:5443/ws/chat"
	d.ServerRoot = kp().Public
	d.NextPreKeyID = 813
	d.ServerChain = NewServerChain(tb, seed)
	d.WebVersion = fmt.Sprintf("2.3000.%d", 1_000_000_000+seed)
	d.WebVersionFetchedAt = time.Date(2026, 12, 1, 8, 30, 0, 123456789, time.FixedZone("Z", 2*3600))
	return d
}

// NewServerChain returns a server chain with every field set (keys drawn
// from a generator seeded with seed, distinct windows for the two
// certificates, whole seconds as on the wire).
func NewServerChain(tb testing.TB, seed uint64) store.ServerChain {
	tb.Helper()
	r := seeded(seed ^ 0xc4a1)
	key := func() keys.PublicKey {
		k, err := keys.NewKeyPair(r)
		if err != nil {
			tb.Fatalf("storetest: %v", err)
		}
		return k.Public
	}
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seed) * time.Hour)
	return store.ServerChain{
		IntermediateSerial:    7 + uint32(seed),
		IntermediateKey:       key(),
		IntermediateNotBefore: base.Add(-30 * 24 * time.Hour),
		IntermediateNotAfter:  base.Add(3 * 365 * 24 * time.Hour),
		LeafSerial:            1<<31 + uint32(seed),
		LeafKey:               key(),
		LeafNotBefore:         base,
		LeafNotAfter:          base.Add(365 * 24 * time.Hour),
	}
}

// NewPreKeys returns n pre-keys with ids first, first+1, … drawn from a
// generator seeded with seed.
func NewPreKeys(tb testing.TB, seed uint64, first uint32, n int) []keys.PreKey {
	tb.Helper()
	pks, err := keys.NewPreKeys(seeded(seed^0x5eed), first, n)
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	return pks
}

// DeviceDiff lists the fields in which got differs from want, by name only:
// secret values are never printed. Times are compared as instants (a store
// need not keep the location), and a nil Account equals an empty one.
func DeviceDiff(want, got *store.Device) []string {
	if want == nil || got == nil {
		if want == got {
			return nil
		}
		return []string{fmt.Sprintf("device: want nil=%t, got nil=%t", want == nil, got == nil)}
	}
	var diffs []string
	add := func(cond bool, name string) {
		if !cond {
			diffs = append(diffs, name)
		}
	}
	kpEq := func(a, b keys.KeyPair) bool { return a.Private.Equal(b.Private) && a.Public.Equal(b.Public) }
	show := func(name string, w, g any) {
		diffs = append(diffs, fmt.Sprintf("%s: want %v, got %v", name, w, g))
	}
	add(kpEq(want.NoiseKey, got.NoiseKey), "NoiseKey")
	add(kpEq(want.IdentityKey, got.IdentityKey), "IdentityKey")
	if want.SignedPreKey.ID != got.SignedPreKey.ID {
		show("SignedPreKey.ID", want.SignedPreKey.ID, got.SignedPreKey.ID)
	}
	add(kpEq(want.SignedPreKey.KeyPair, got.SignedPreKey.KeyPair), "SignedPreKey.KeyPair")
	add(want.SignedPreKey.Signature == got.SignedPreKey.Signature, "SignedPreKey.Signature")
	if want.RegistrationID != got.RegistrationID {
		show("RegistrationID", want.RegistrationID, got.RegistrationID)
	}
	add(want.AdvSecret == got.AdvSecret, "AdvSecret")
	if want.ID != got.ID {
		show("ID", fmt.Sprintf("%+v", want.ID), fmt.Sprintf("%+v", got.ID))
	}
	if want.LID != got.LID {
		show("LID", fmt.Sprintf("%+v", want.LID), fmt.Sprintf("%+v", got.LID))
	}
	add(bytes.Equal(want.Account, got.Account), "Account")
	if !want.PrimaryIdentity.Equal(got.PrimaryIdentity) {
		show("PrimaryIdentity", want.PrimaryIdentity, got.PrimaryIdentity)
	}
	if want.BusinessName != got.BusinessName {
		show("BusinessName", want.BusinessName, got.BusinessName)
	}
	if want.PushName != got.PushName {
		show("PushName", want.PushName, got.PushName)
	}
	if want.Platform != got.Platform {
		show("Platform", want.Platform, got.Platform)
	}
	if !want.LinkedAt.Equal(got.LinkedAt) || want.LinkedAt.IsZero() != got.LinkedAt.IsZero() {
		show("LinkedAt", want.LinkedAt, got.LinkedAt)
	}
	if want.ClockOffset != got.ClockOffset {
		show("ClockOffset", want.ClockOffset, got.ClockOffset)
	}
	if want.ServerURL != got.ServerURL {
		show("ServerURL", want.ServerURL, got.ServerURL)
	}
	if !want.ServerRoot.Equal(got.ServerRoot) {
		show("ServerRoot", want.ServerRoot, got.ServerRoot)
	}
	if want.NextPreKeyID != got.NextPreKeyID {
		show("NextPreKeyID", want.NextPreKeyID, got.NextPreKeyID)
	}
	if !want.CreatedAt.Equal(got.CreatedAt) || want.CreatedAt.IsZero() != got.CreatedAt.IsZero() {
		show("CreatedAt", want.CreatedAt, got.CreatedAt)
	}
	if want.Unconfirmed != got.Unconfirmed {
		show("Unconfirmed", want.Unconfirmed, got.Unconfirmed)
	}
	if d := ChainDiff(want.ServerChain, got.ServerChain); d != "" {
		diffs = append(diffs, d)
	}
	if want.WebVersion != got.WebVersion {
		show("WebVersion", want.WebVersion, got.WebVersion)
	}
	if !want.WebVersionFetchedAt.Equal(got.WebVersionFetchedAt) || want.WebVersionFetchedAt.IsZero() != got.WebVersionFetchedAt.IsZero() {
		show("WebVersionFetchedAt", want.WebVersionFetchedAt, got.WebVersionFetchedAt)
	}
	return diffs
}

// ChainDiff describes how got differs from want ("" when equal). Times
// are compared as instants.
func ChainDiff(want, got store.ServerChain) string {
	var bad []string
	if want.IntermediateSerial != got.IntermediateSerial {
		bad = append(bad, "IntermediateSerial")
	}
	if !want.IntermediateKey.Equal(got.IntermediateKey) {
		bad = append(bad, "IntermediateKey")
	}
	if !want.IntermediateNotBefore.Equal(got.IntermediateNotBefore) || !want.IntermediateNotAfter.Equal(got.IntermediateNotAfter) {
		bad = append(bad, "Intermediate window")
	}
	if want.LeafSerial != got.LeafSerial {
		bad = append(bad, "LeafSerial")
	}
	if !want.LeafKey.Equal(got.LeafKey) {
		bad = append(bad, "LeafKey")
	}
	if !want.LeafNotBefore.Equal(got.LeafNotBefore) || !want.LeafNotAfter.Equal(got.LeafNotAfter) {
		bad = append(bad, "Leaf window")
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("ServerChain (%v)", bad)
}

// clone returns a deep copy of d, so a test can tell whether a store
// mutated its argument.
func clone(d *store.Device) *store.Device {
	c := *d
	c.Account = bytes.Clone(d.Account)
	return &c
}
