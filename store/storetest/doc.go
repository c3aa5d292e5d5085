// Package storetest is the conformance suite every [store.Store]
// implementation runs, so the SQLite store, the PostgreSQL store and any
// in-memory store behave the same way.
//
// # Use
//
// An implementation's test calls [Run] with a function that opens a fresh,
// empty store for one subtest (and registers its cleanup with t.Cleanup):
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// # What it checks
//
// Round trips of every Device field (including zero values and unpaired
// devices), replacing a record, DeviceByJID, the order of Devices, deletion
// of a device with its pre-keys and LID mapping, pre-key storage and
// NextPreKeyID, LIDForPhone, [store.ErrNotFound] through errors.Is, use from
// many goroutines at once, and that a cancelled context stops every method.
//
// # Semantics the suite pins down
//
// The store interface leaves a few choices open; the suite fixes them so all
// stores agree:
//
//   - PutDevice refuses a nil device and a device whose noise public key is
//     zero (it has no address).
//   - Replacing a device with PutDevice keeps its pre-keys; only
//     DeleteDevice removes them.
//   - DeviceByJID matches the device's own JID or its LID exactly, device
//     number included; the empty JID never matches.
//   - PutPreKeys on an unknown device fails with ErrNotFound; PreKeyCount on
//     an unknown device is 0.
//   - LIDForPhone looks up the user part only (the device part is ignored)
//     and returns the bare LID user JID.
//
// [NewDevice], [NewPreKeys] and [DeviceDiff] are exported so that stores'
// own tests and benchmarks can build the same fixtures.
package storetest
