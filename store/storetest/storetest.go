package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// Run runs the conformance suite against the stores open makes. open is
// called once per subtest and must return a fresh, empty store; it should
// register the store's Close with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTripPaired", testRoundTripPaired},
		{"RoundTripUnpaired", testRoundTripUnpaired},
		{"RoundTripZeroValues", testRoundTripZeroValues},
		{"NoAliasing", testNoAliasing},
		{"PutDeviceRejectsInvalid", testPutInvalid},
		{"NotFound", testNotFound},
		{"DeviceByJID", testDeviceByJID},
		{"DevicesOrder", testDevicesOrder},
		{"Unconfirmed", testUnconfirmed},
		{"ReconnectState", testReconnectState},
		{"Replace", testReplace},
		{"Unpair", testUnpair},
		{"Delete", testDelete},
		{"PreKeys", testPreKeys},
		{"PreKeysUnknownDevice", testPreKeysUnknownDevice},
		{"PreKeysInvalid", testPreKeysInvalid},
		{"LIDForPhone", testLIDForPhone},
		{"SeveralDevices", testSeveralDevices},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelled},
		{"ExpiredDeadline", testDeadline},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("storetest: open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s store.Store, d *store.Device) {
	t.Helper()
	if err := s.PutDevice(ctxOf(t), d); err != nil {
		t.Fatalf("PutDevice: %v", err)
	}
}

func mustGet(t *testing.T, s store.Store, pub keys.PublicKey) *store.Device {
	t.Helper()
	d, err := s.Device(ctxOf(t), pub)
	if err != nil {
		t.Fatalf("Device(%s): %v", pub, err)
	}
	if d == nil {
		t.Fatalf("Device(%s) returned nil, nil", pub)
	}
	return d
}

func checkSame(t *testing.T, what string, want, got *store.Device) {
	t.Helper()
	if diff := DeviceDiff(want, got); len(diff) > 0 {
		t.Errorf("%s differs:\n  %s", what, strings.Join(diff, "\n  "))
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want store.ErrNotFound", what, err)
	}
}

func testRoundTripPaired(t *testing.T, s store.Store) {
	want := NewDevice(t, 1, true)
	orig := clone(want)
	mustPut(t, s, want)
	checkSame(t, "argument after PutDevice", orig, want)
	got := mustGet(t, s, want.NoiseKey.Public)
	checkSame(t, "loaded device", want, got)
	if !got.Paired() {
		t.Error("loaded paired device reports Paired() = false")
	}
	// Round trip through a second load, in case the first read was cached
	// from the argument.
	checkSame(t, "second load", want, mustGet(t, s, want.NoiseKey.Public))
}

// testUnconfirmed stores a session before the server confirmed it, then
// confirms it: both states must survive a round trip, and DeviceByJID must
// find the unconfirmed one (the client logs in with it to learn its fate).
func testUnconfirmed(t *testing.T, s store.Store) {
	want := NewDevice(t, 7, true)
	want.Unconfirmed = true
	mustPut(t, s, want)
	got := mustGet(t, s, want.NoiseKey.Public)
	checkSame(t, "unconfirmed device", want, got)
	if !got.Paired() || got.Linked() {
		t.Errorf("unconfirmed device: Paired() = %v, Linked() = %v; want true, false", got.Paired(), got.Linked())
	}
	byJID, err := s.DeviceByJID(ctxOf(t), want.ID)
	if err != nil {
		t.Fatalf("DeviceByJID of an unconfirmed device: %v", err)
	}
	checkSame(t, "unconfirmed device by jid", want, byJID)
	want.Unconfirmed = false
	mustPut(t, s, want)
	got = mustGet(t, s, want.NoiseKey.Public)
	checkSame(t, "confirmed device", want, got)
	if !got.Linked() {
		t.Error("confirmed device reports Linked() = false")
	}
}

func testRoundTripUnpaired(t *testing.T, s store.Store) {
	want := NewDevice(t, 2, false)
	mustPut(t, s, want)
	got := mustGet(t, s, want.NoiseKey.Public)
	checkSame(t, "loaded device", want, got)
	if got.Paired() {
		t.Error("unpaired device reports Paired() = true")
	}
	if !got.ID.IsEmpty() || !got.LID.IsEmpty() {
		t.Errorf("unpaired device got ID %+v LID %+v", got.ID, got.LID)
	}
}

// testRoundTripZeroValues stores a device whose every field but the noise
// key is the zero value: zero keys must come back zero (not, say, a clamped
// zero scalar), zero times zero, empty strings empty.
func testRoundTripZeroValues(t *testing.T, s store.Store) {
	nk, err := keys.NewKeyPair(seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	want := &store.Device{NoiseKey: nk}
	mustPut(t, s, want)
	got := mustGet(t, s, nk.Public)
	checkSame(t, "zero device", want, got)
	if !got.IdentityKey.Private.IsZero() || !got.SignedPreKey.Private.IsZero() {
		t.Error("zero private keys came back non-zero")
	}
	if !got.LinkedAt.IsZero() || !got.CreatedAt.IsZero() {
		t.Errorf("zero times came back as %v, %v", got.LinkedAt, got.CreatedAt)
	}
	if len(got.Account) != 0 {
		t.Errorf("nil Account came back with %d bytes", len(got.Account))
	}

	// Extreme but valid values.
	want.RegistrationID = 1<<32 - 1
	want.NextPreKeyID = 1<<32 - 1
	want.ClockOffset = -(1<<63 - 1)
	want.SignedPreKey.ID = keys.MaxPreKeyID
	want.ID = jid.JID{User: "1", RawAgent: 255, Device: 65535, Integrator: 65535, Server: jid.DefaultUserServer}
	want.LID = jid.JID{User: "2", Device: 65535, Server: jid.LIDServer}
	want.Account = []byte{}
	mustPut(t, s, want)
	checkSame(t, "extreme device", want, mustGet(t, s, nk.Public))
}

// testNoAliasing checks that the store copies byte slices: changing the
// caller's Account after PutDevice, or a loaded Account, changes nothing.
func testNoAliasing(t *testing.T, s store.Store) {
	d := NewDevice(t, 4, true)
	mustPut(t, s, d)
	d.Account[0] ^= 0xff
	got := mustGet(t, s, d.NoiseKey.Public)
	if got.Account[0] == d.Account[0] {
		t.Error("store kept the caller's Account slice")
	}
	got.Account[1] ^= 0xff
	again := mustGet(t, s, d.NoiseKey.Public)
	if again.Account[1] == got.Account[1] {
		t.Error("store handed out its own Account slice")
	}
}

func testPutInvalid(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	if err := s.PutDevice(ctx, nil); err == nil {
		t.Error("PutDevice(nil) succeeded")
	}
	d := NewDevice(t, 5, true)
	d.NoiseKey = keys.KeyPair{}
	if err := s.PutDevice(ctx, d); err == nil {
		t.Error("PutDevice with a zero noise key succeeded")
	}
	devs, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 0 {
		t.Errorf("rejected devices were stored: %d devices", len(devs))
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := NewDevice(t, 6, true)
	_, err := s.Device(ctx, d.NoiseKey.Public)
	wantNotFound(t, "Device on empty store", err)
	_, err = s.DeviceByJID(ctx, d.ID)
	wantNotFound(t, "DeviceByJID on empty store", err)
	_, err = s.PreKey(ctx, d.NoiseKey.Public, 1)
	wantNotFound(t, "PreKey on empty store", err)
	_, err = s.LIDForPhone(ctx, d.ID)
	wantNotFound(t, "LIDForPhone on empty store", err)
	n, err := s.PreKeyCount(ctx, d.NoiseKey.Public)
	if err != nil || n != 0 {
		t.Errorf("PreKeyCount on empty store = %d, %v; want 0, nil", n, err)
	}
	devs, err := s.Devices(ctx)
	if err != nil || len(devs) != 0 {
		t.Errorf("Devices on empty store = %d devices, %v", len(devs), err)
	}
	if err := s.DeleteDevice(ctx, d.NoiseKey.Public); err != nil {
		t.Errorf("DeleteDevice of an absent device: %v", err)
	}
}

func testDeviceByJID(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	a := NewDevice(t, 10, true)
	b := NewDevice(t, 11, true)
	b.ID = jid.NewAD(a.ID.User, a.ID.Device+1, a.ID.Server) // same account, next device
	b.LID = jid.NewAD(a.LID.User, a.LID.Device+1, a.LID.Server)
	u := NewDevice(t, 12, false)
	for _, d := range []*store.Device{a, b, u} {
		mustPut(t, s, d)
	}
	for _, tc := range []struct {
		name string
		id   jid.JID
		want *store.Device
	}{
		{"a by ID", a.ID, a},
		{"b by ID", b.ID, b},
		{"a by LID", a.LID, a},
		{"b by LID", b.LID, b},
	} {
		got, err := s.DeviceByJID(ctx, tc.id)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		checkSame(t, tc.name, tc.want, got)
	}
	for _, tc := range []struct {
		name string
		id   jid.JID
	}{
		{"empty JID (unpaired devices have it)", jid.JID{}},
		{"primary device of the account", a.ID.ToNonAD()},
		{"unknown device number", jid.NewAD(a.ID.User, a.ID.Device+7, a.ID.Server)},
		{"other server", jid.NewAD(a.ID.User, a.ID.Device, jid.LegacyUserServer)},
		{"other agent", jid.JID{User: a.ID.User, RawAgent: 1, Device: a.ID.Device, Server: a.ID.Server}},
		{"user prefix", jid.NewAD(a.ID.User[:5], a.ID.Device, a.ID.Server)},
	} {
		_, err := s.DeviceByJID(ctx, tc.id)
		wantNotFound(t, tc.name, err)
	}
}

func testDevicesOrder(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	mk := func(seed uint64, created time.Time, paired bool) *store.Device {
		d := NewDevice(t, seed, paired)
		d.CreatedAt = created
		return d
	}
	// Put in an order different from the creation order; two share an
	// instant (insertion order breaks the tie) and one has no CreatedAt
	// (oldest of all).
	d3 := mk(23, base.Add(3*time.Nanosecond), true)
	d1 := mk(21, base.Add(time.Nanosecond), false)
	d2a := mk(22, base.Add(2*time.Nanosecond), true)
	d2b := mk(24, base.Add(2*time.Nanosecond), false)
	d0 := mk(20, time.Time{}, false)
	for _, d := range []*store.Device{d3, d1, d2a, d2b, d0} {
		mustPut(t, s, d)
	}
	// Replacing a record does not move it.
	d2a.PushName = "renamed"
	mustPut(t, s, d2a)

	want := []*store.Device{d0, d1, d2a, d2b, d3}
	got, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Devices returned %d devices, want %d", len(got), len(want))
	}
	for i := range want {
		checkSame(t, fmt.Sprintf("Devices()[%d]", i), want[i], got[i])
	}
}

func testReplace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := NewDevice(t, 30, false)
	mustPut(t, s, d)
	pks := NewPreKeys(t, 30, 1, 5)
	if err := s.PutPreKeys(ctx, d.NoiseKey.Public, pks, 6); err != nil {
		t.Fatal(err)
	}

	// Pairing fills in the rest of the record.
	p := NewDevice(t, 31, true)
	paired := clone(d)
	paired.ID, paired.LID, paired.Account = p.ID, p.LID, p.Account
	paired.PrimaryIdentity, paired.PushName, paired.Platform = p.PrimaryIdentity, p.PushName, p.Platform
	paired.LinkedAt, paired.ClockOffset = p.LinkedAt, p.ClockOffset
	paired.AdvSecret = p.AdvSecret
	paired.NextPreKeyID = 6
	mustPut(t, s, paired)
	checkSame(t, "after pairing", paired, mustGet(t, s, d.NoiseKey.Public))
	if n, err := s.PreKeyCount(ctx, d.NoiseKey.Public); err != nil || n != 5 {
		t.Errorf("PreKeyCount after replace = %d, %v; want 5 (replace keeps pre-keys)", n, err)
	}
	if lid, err := s.LIDForPhone(ctx, paired.ID); err != nil || lid != paired.LID.ToNonAD() {
		t.Errorf("LIDForPhone after pairing = %+v, %v; want %+v", lid, err, paired.LID.ToNonAD())
	}

	// A re-link under another account replaces the mapping.
	q := NewDevice(t, 32, true)
	moved := clone(paired)
	moved.ID, moved.LID = q.ID, q.LID
	mustPut(t, s, moved)
	checkSame(t, "after re-link", moved, mustGet(t, s, d.NoiseKey.Public))
	_, err := s.LIDForPhone(ctx, paired.ID)
	wantNotFound(t, "old phone after re-link", err)
	if lid, err := s.LIDForPhone(ctx, moved.ID); err != nil || lid != moved.LID.ToNonAD() {
		t.Errorf("LIDForPhone after re-link = %+v, %v", lid, err)
	}
	_, err = s.DeviceByJID(ctx, paired.ID)
	wantNotFound(t, "old JID after re-link", err)

	devs, err := s.Devices(ctx)
	if err != nil || len(devs) != 1 {
		t.Errorf("Devices after replaces = %d devices, %v; want 1", len(devs), err)
	}
}

// testUnpair clears the pairing fields (as a logout would) and checks the
// mapping goes with them.
func testUnpair(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := NewDevice(t, 35, true)
	mustPut(t, s, d)
	u := clone(d)
	u.ID, u.LID, u.Account, u.PrimaryIdentity = jid.JID{}, jid.JID{}, nil, keys.PublicKey{}
	u.PushName, u.BusinessName, u.Platform, u.LinkedAt = "", "", "", time.Time{}
	mustPut(t, s, u)
	got := mustGet(t, s, d.NoiseKey.Public)
	checkSame(t, "unpaired", u, got)
	if got.Paired() {
		t.Error("device still paired")
	}
	_, err := s.LIDForPhone(ctx, d.ID)
	wantNotFound(t, "LIDForPhone after unpair", err)
	_, err = s.DeviceByJID(ctx, d.ID)
	wantNotFound(t, "DeviceByJID after unpair", err)

	// Only ID set (no LID): no mapping is written.
	half := clone(d)
	half.LID = jid.JID{}
	mustPut(t, s, half)
	_, err = s.LIDForPhone(ctx, d.ID)
	wantNotFound(t, "LIDForPhone without LID", err)
	if _, err := s.DeviceByJID(ctx, d.ID); err != nil {
		t.Errorf("DeviceByJID with ID only: %v", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	a := NewDevice(t, 40, true)
	b := NewDevice(t, 41, true)
	mustPut(t, s, a)
	mustPut(t, s, b)
	for _, d := range []*store.Device{a, b} {
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, NewPreKeys(t, 40, 1, 10), 11); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteDevice(ctx, a.NoiseKey.Public); err != nil {
		t.Fatal(err)
	}
	_, err := s.Device(ctx, a.NoiseKey.Public)
	wantNotFound(t, "Device after delete", err)
	_, err = s.DeviceByJID(ctx, a.ID)
	wantNotFound(t, "DeviceByJID after delete", err)
	_, err = s.PreKey(ctx, a.NoiseKey.Public, 1)
	wantNotFound(t, "PreKey after delete", err)
	if n, err := s.PreKeyCount(ctx, a.NoiseKey.Public); err != nil || n != 0 {
		t.Errorf("PreKeyCount after delete = %d, %v", n, err)
	}
	_, err = s.LIDForPhone(ctx, a.ID)
	wantNotFound(t, "LIDForPhone after delete", err)

	// The other device is untouched.
	b.NextPreKeyID = 11
	checkSame(t, "other device", b, mustGet(t, s, b.NoiseKey.Public))
	if n, err := s.PreKeyCount(ctx, b.NoiseKey.Public); err != nil || n != 10 {
		t.Errorf("other device's PreKeyCount = %d, %v", n, err)
	}
	if _, err := s.LIDForPhone(ctx, b.ID); err != nil {
		t.Errorf("other device's mapping: %v", err)
	}
	// Deleting twice is fine; a re-put starts clean.
	if err := s.DeleteDevice(ctx, a.NoiseKey.Public); err != nil {
		t.Errorf("second DeleteDevice: %v", err)
	}
	mustPut(t, s, a)
	if n, err := s.PreKeyCount(ctx, a.NoiseKey.Public); err != nil || n != 0 {
		t.Errorf("re-put device has %d pre-keys, %v", n, err)
	}
}

func testPreKeys(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := NewDevice(t, 50, false)
	mustPut(t, s, d)
	pub := d.NoiseKey.Public

	// A batch the size WhatsApp asks for at first login.
	const n = 812
	pks := NewPreKeys(t, 50, 1, n)
	if err := s.PutPreKeys(ctx, pub, pks, n+1); err != nil {
		t.Fatal(err)
	}
	if c, err := s.PreKeyCount(ctx, pub); err != nil || c != n {
		t.Fatalf("PreKeyCount = %d, %v; want %d", c, err, n)
	}
	for _, i := range []int{0, 1, 400, n - 1} {
		got, err := s.PreKey(ctx, pub, pks[i].ID)
		if err != nil {
			t.Errorf("PreKey(%d): %v", pks[i].ID, err)
			continue
		}
		if got.ID != pks[i].ID || !got.Private.Equal(pks[i].Private) || !got.Public.Equal(pks[i].Public) {
			t.Errorf("PreKey(%d) differs from what was stored", pks[i].ID)
		}
	}
	if got := mustGet(t, s, pub); got.NextPreKeyID != n+1 {
		t.Errorf("NextPreKeyID = %d, want %d", got.NextPreKeyID, n+1)
	}
	_, err := s.PreKey(ctx, pub, n+1)
	wantNotFound(t, "PreKey past the batch", err)

	// Upload more, wrapping ids, and overwrite one existing id.
	more := NewPreKeys(t, 51, keys.MaxPreKeyID-1, 3) // ids Max-1, Max, 1
	if err := s.PutPreKeys(ctx, pub, more, 2); err != nil {
		t.Fatal(err)
	}
	if c, err := s.PreKeyCount(ctx, pub); err != nil || c != n+2 {
		t.Errorf("PreKeyCount after overlap = %d, %v; want %d", c, err, n+2)
	}
	got, err := s.PreKey(ctx, pub, 1)
	if err != nil || !got.Private.Equal(more[2].Private) {
		t.Errorf("PreKey(1) was not replaced: %v", err)
	}
	got, err = s.PreKey(ctx, pub, keys.MaxPreKeyID)
	if err != nil || !got.Public.Equal(more[1].Public) {
		t.Errorf("PreKey(Max): %v", err)
	}

	// An id repeated within one batch keeps the later key.
	rep := NewPreKeys(t, 53, 5, 3) // ids 5, 6, 7
	rep[2].ID = 5
	if err := s.PutPreKeys(ctx, pub, rep, 8); err != nil {
		t.Fatal(err)
	}
	if c, err := s.PreKeyCount(ctx, pub); err != nil || c != n+2 {
		t.Errorf("PreKeyCount after a repeated id = %d, %v; want %d", c, err, n+2)
	}
	got, err = s.PreKey(ctx, pub, 5)
	if err != nil || !got.Private.Equal(rep[2].Private) || !got.Public.Equal(rep[2].Public) {
		t.Errorf("PreKey(5) is not the batch's later key: %v", err)
	}
	got, err = s.PreKey(ctx, pub, 6)
	if err != nil || !got.Private.Equal(rep[1].Private) {
		t.Errorf("PreKey(6): %v", err)
	}

	// An empty batch only moves NextPreKeyID.
	if err := s.PutPreKeys(ctx, pub, nil, 99); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, pub); got.NextPreKeyID != 99 {
		t.Errorf("NextPreKeyID after empty batch = %d", got.NextPreKeyID)
	}

	// Pre-keys belong to one device only.
	other := NewDevice(t, 52, false)
	mustPut(t, s, other)
	_, err = s.PreKey(ctx, other.NoiseKey.Public, 1)
	wantNotFound(t, "other device's PreKey", err)
	if c, err := s.PreKeyCount(ctx, other.NoiseKey.Public); err != nil || c != 0 {
		t.Errorf("other device's PreKeyCount = %d, %v", c, err)
	}
}

func testPreKeysUnknownDevice(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := NewDevice(t, 55, false)
	err := s.PutPreKeys(ctx, d.NoiseKey.Public, NewPreKeys(t, 55, 1, 3), 4)
	wantNotFound(t, "PutPreKeys for an unknown device", err)
	mustPut(t, s, d)
	if c, err := s.PreKeyCount(ctx, d.NoiseKey.Public); err != nil || c != 0 {
		t.Errorf("pre-keys of the refused batch were stored: %d, %v", c, err)
	}
}

func testPreKeysInvalid(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := NewDevice(t, 56, false)
	mustPut(t, s, d)
	pks := NewPreKeys(t, 56, 1, 3)
	for _, bad := range []uint32{0, keys.MaxPreKeyID + 1} {
		b := append([]keys.PreKey(nil), pks...)
		b[2].ID = bad // the last one, so a store that writes row by row has written two
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, b, 50); err == nil {
			t.Errorf("PutPreKeys with id %d succeeded", bad)
		}
	}
	if c, err := s.PreKeyCount(ctx, d.NoiseKey.Public); err != nil || c != 0 {
		t.Errorf("a refused batch left %d pre-keys, %v", c, err)
	}
	if got := mustGet(t, s, d.NoiseKey.Public); got.NextPreKeyID != d.NextPreKeyID {
		t.Errorf("a refused batch moved NextPreKeyID to %d", got.NextPreKeyID)
	}
}

func testLIDForPhone(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := NewDevice(t, 60, true)
	mustPut(t, s, d)
	want := d.LID.ToNonAD()
	for _, phone := range []jid.JID{d.ID, d.ID.ToNonAD(), jid.NewAD(d.ID.User, 0, d.ID.Server)} {
		got, err := s.LIDForPhone(ctx, phone)
		if err != nil {
			t.Errorf("LIDForPhone(%+v): %v", phone, err)
			continue
		}
		if got != want {
			t.Errorf("LIDForPhone(%+v) = %+v, want %+v", phone, got, want)
		}
	}
	_, err := s.LIDForPhone(ctx, jid.New("19990000000", jid.DefaultUserServer))
	wantNotFound(t, "unknown phone", err)
	_, err = s.LIDForPhone(ctx, jid.JID{})
	wantNotFound(t, "empty JID", err)
	// A LID is not a phone number.
	_, err = s.LIDForPhone(ctx, d.LID)
	wantNotFound(t, "LID given as phone", err)
}

func testSeveralDevices(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	var devs []*store.Device
	for i := range uint64(6) {
		d := NewDevice(t, 70+i, i%3 != 0)
		devs = append(devs, d)
		mustPut(t, s, d)
		if err := s.PutPreKeys(ctx, d.NoiseKey.Public, NewPreKeys(t, 70+i, 1, int(i)+1), uint32(i)+2); err != nil {
			t.Fatal(err)
		}
		d.NextPreKeyID = uint32(i) + 2
	}
	got, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(devs) {
		t.Fatalf("Devices returned %d, want %d", len(got), len(devs))
	}
	for i, d := range devs {
		checkSame(t, fmt.Sprintf("device %d", i), d, got[i])
		if c, err := s.PreKeyCount(ctx, d.NoiseKey.Public); err != nil || c != i+1 {
			t.Errorf("device %d PreKeyCount = %d, %v", i, c, err)
		}
		if d.Paired() {
			byJID, err := s.DeviceByJID(ctx, d.ID)
			if err != nil {
				t.Errorf("device %d by JID: %v", i, err)
			} else {
				checkSame(t, fmt.Sprintf("device %d by JID", i), d, byJID)
			}
		}
	}
}

// testConcurrent hammers one store from many goroutines, mixing reads and
// writes on shared and private devices. Any error (such as SQLite's
// "database is locked") fails the test.
func testConcurrent(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	const workers = 16
	const rounds = 6
	shared := NewDevice(t, 80, true)
	mustPut(t, s, shared)

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			own := NewDevice(t, 100+uint64(w), w%2 == 0)
			pks := NewPreKeys(t, 100+uint64(w), 1, 20)
			fail := func(op string, err error) {
				errs <- fmt.Errorf("worker %d: %s: %w", w, op, err)
			}
			for r := range rounds {
				if err := s.PutDevice(ctx, own); err != nil {
					fail("PutDevice", err)
					return
				}
				if err := s.PutPreKeys(ctx, own.NoiseKey.Public, pks[r%4*5:r%4*5+5], uint32(r)); err != nil {
					fail("PutPreKeys", err)
					return
				}
				if _, err := s.Device(ctx, own.NoiseKey.Public); err != nil {
					fail("Device", err)
					return
				}
				if _, err := s.Device(ctx, shared.NoiseKey.Public); err != nil {
					fail("shared Device", err)
					return
				}
				if w%4 == 1 {
					// Writers racing on one record must each succeed.
					if err := s.PutDevice(ctx, shared); err != nil {
						fail("shared PutDevice", err)
						return
					}
				}
				if _, err := s.PreKeyCount(ctx, own.NoiseKey.Public); err != nil {
					fail("PreKeyCount", err)
					return
				}
				if _, err := s.Devices(ctx); err != nil {
					fail("Devices", err)
					return
				}
				if _, err := s.LIDForPhone(ctx, shared.ID); err != nil {
					fail("LIDForPhone", err)
					return
				}
				if r == rounds-1 && w%3 == 0 {
					if err := s.DeleteDevice(ctx, own.NoiseKey.Public); err != nil {
						fail("DeleteDevice", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	devs, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// shared + workers not divisible by 3.
	if want := 1 + workers - (workers+2)/3; len(devs) != want {
		t.Errorf("after the storm: %d devices, want %d", len(devs), want)
	}
}

// checkCtxErr accepts an error that wraps the context's error. Some drivers
// report their own "interrupted" error; the suite insists on errors.Is so
// callers can tell cancellation from failure.
func checkCtxErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s with a done context: err = %v, want one wrapping %v", op, err, want)
	}
}

func testCancelled(t *testing.T, s store.Store) {
	d := NewDevice(t, 90, true)
	mustPut(t, s, d)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	exerciseDone(t, s, ctx, d, context.Canceled)
}

func testDeadline(t *testing.T, s store.Store) {
	d := NewDevice(t, 91, true)
	mustPut(t, s, d)
	ctx, cancel := context.WithDeadline(t.Context(), time.Unix(1, 0))
	defer cancel()
	exerciseDone(t, s, ctx, d, context.DeadlineExceeded)
}

func exerciseDone(t *testing.T, s store.Store, ctx context.Context, d *store.Device, want error) {
	t.Helper()
	pub := d.NoiseKey.Public
	_, err := s.Devices(ctx)
	checkCtxErr(t, "Devices", err, want)
	_, err = s.Device(ctx, pub)
	checkCtxErr(t, "Device", err, want)
	_, err = s.DeviceByJID(ctx, d.ID)
	checkCtxErr(t, "DeviceByJID", err, want)
	changed := clone(d)
	changed.PushName = "must not be written"
	checkCtxErr(t, "PutDevice", s.PutDevice(ctx, changed), want)
	checkCtxErr(t, "PutPreKeys", s.PutPreKeys(ctx, pub, NewPreKeys(t, 90, 1, 2), 3), want)
	_, err = s.PreKey(ctx, pub, 1)
	checkCtxErr(t, "PreKey", err, want)
	_, err = s.PreKeyCount(ctx, pub)
	checkCtxErr(t, "PreKeyCount", err, want)
	_, err = s.LIDForPhone(ctx, d.ID)
	checkCtxErr(t, "LIDForPhone", err, want)
	checkCtxErr(t, "DeleteDevice", s.DeleteDevice(ctx, pub), want)

	// Nothing changed.
	checkSame(t, "device after calls with a done context", d, mustGet(t, s, pub))
	if c, err := s.PreKeyCount(ctxOf(t), pub); err != nil || c != 0 {
		t.Errorf("PreKeyCount = %d, %v; want 0", c, err)
	}
}

// testReconnectState follows a device through what the client stores
// between connections (CHANGES-2026 §7, §8): no chain or version after
// pairing, a chain after the first full handshake, a new chain after an
// XXfallback, none after a crypto-fatal resume failure, and a fetched
// version with its time. Each step is a whole-record PutDevice, and the
// rest of the record must be untouched by it.
func testReconnectState(t *testing.T, s store.Store) {
	d := NewDevice(t, 11, true)
	d.ServerChain, d.WebVersion, d.WebVersionFetchedAt = store.ServerChain{}, "", time.Time{}
	mustPut(t, s, d)
	got := mustGet(t, s, d.NoiseKey.Public)
	checkSame(t, "device without reconnect state", d, got)
	if !got.ServerChain.IsZero() || got.WebVersion != "" || !got.WebVersionFetchedAt.IsZero() {
		t.Fatalf("fresh device has reconnect state: chain zero %t, version %q, fetched %v", got.ServerChain.IsZero(), got.WebVersion, got.WebVersionFetchedAt)
	}

	first := NewServerChain(t, 1)
	got.ServerChain = first
	mustPut(t, s, got)
	checkSame(t, "after storing a chain", got, mustGet(t, s, d.NoiseKey.Public))

	rotated := NewServerChain(t, 2)
	got.ServerChain = rotated
	got.WebVersion = "2.3000.1099999999"
	got.WebVersionFetchedAt = time.Date(2026, 12, 4, 15, 0, 0, 1, time.UTC)
	mustPut(t, s, got)
	again := mustGet(t, s, d.NoiseKey.Public)
	checkSame(t, "after a new chain and version", got, again)
	if again.ServerChain.LeafKey.Equal(first.LeafKey) {
		t.Fatal("the old chain survived its replacement")
	}

	again.ServerChain = store.ServerChain{}
	mustPut(t, s, again)
	cleared := mustGet(t, s, d.NoiseKey.Public)
	if !cleared.ServerChain.IsZero() {
		t.Fatal("a cleared chain came back")
	}
	checkSame(t, "after clearing the chain", again, cleared)
	// The other devices of a store keep their own.
	other := NewDevice(t, 12, true)
	mustPut(t, s, other)
	checkSame(t, "second device", other, mustGet(t, s, other.NoiseKey.Public))
	checkSame(t, "first device after the second was stored", again, mustGet(t, s, d.NoiseKey.Public))
}
