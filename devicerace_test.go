package walink_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
)

// gatedStore holds back the first write of a rotated adv secret until the
// test releases it, so that a pair-success can arrive while it is under
// way.
type gatedStore struct {
	*memstore.Store
	mu       sync.Mutex
	rotating chan struct{} // closed when the rotation write is held
	release  chan struct{}
	held     bool
}

func (g *gatedStore) PutDevice(ctx context.Context, d *store.Device) error {
	if !d.Paired() {
		if old, err := g.Device(ctx, d.NoiseKey.Public); err == nil && old.AdvSecret != d.AdvSecret {
			g.mu.Lock()
			hold := !g.held
			g.held = true
			g.mu.Unlock()
			if hold {
				close(g.rotating)
				<-g.release
			}
		}
	}
	return g.Store.PutDevice(ctx, d)
}

// TestDeviceRecordOneWriter is the race the review found: a pair code's
// companion_finish is accepted, pair-success does not follow in time, so
// the code is given up and the QR's adv secret rotated and stored; a QR
// pair-success arriving while that write is under way was accepted and
// stored by the read loop, and then the rotation's write (from a timer
// goroutine) overwrote the paired record in the store and in memory:
// PairSuccess emitted, unpaired device stored.
//
// With one owner the two are steps in order: whatever the outcome, what
// was emitted, what the client holds and what the store holds agree.
func TestDeviceRecordOneWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		fs := newPipeFakeServer(t)
		st := &gatedStore{Store: memstore.New(), rotating: make(chan struct{}), release: make(chan struct{})}
		cli, rec := newClient(t, st, fs.config())
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		ident, _ := keys.PublicKeyFromBytes(fc.registration().EIdent)
		// Six refs: the QR is still live (60 s + 5 × 20 s) when the code is
		// given up at 60 s.
		var refs []binxml.Node
		for _, r := range []string{"r1", "r2", "r3", "r4", "r5", "r6"} {
			refs = append(refs, binxml.Node{Tag: "ref", Content: []byte(r)})
		}
		fc.send(iqSet("pd-1", binxml.Node{Tag: "pair-device", Children: refs}))
		from := 0
		qr, _ := pairing.ParseQR(waitFor[walink.PairingQRCode](t, rec, &from, time.Minute).Code)
		code := helloAndRef(t, ctx, cli, fc, "REF-R")
		primaryEph, _ := keys.NewKeyPair(rand.Reader)
		primaryID, _ := keys.NewKeyPair(rand.Reader)
		wrapped, _ := pairing.WrapKey(rand.Reader, code, primaryEph.Public)
		fc.send(binxml.Node{Tag: "notification", Attrs: []binxml.Attr{srvFrom, binxml.A("id", "n-r"), binxml.A("type", "link_code_companion_reg")},
			Children: []binxml.Node{{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.A("stage", "primary_hello")}, Children: []binxml.Node{
				{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: wrapped},
				{Tag: "primary_identity_pub", Content: primaryID.Public.Bytes()},
				{Tag: "link_code_pairing_ref", Content: []byte("REF-R")},
			}}}})
		fin := fc.next("companion_finish", func(n binxml.Node) bool { return hasStage(n, "companion_finish") })
		fc.send(iqResult(fin.Attr("id")))

		<-st.rotating // PairCodeFinishTimeout (60 s) passed: the rotation write is held
		account, _ := keys.NewKeyPair(rand.Reader)
		dev := jid.NewAD(testPhone, 9, jid.DefaultUserServer)
		c, err := pairing.SignDeviceIdentity(rand.Reader, account, ident, qr.AdvSecret, pairing.DeviceIdentity{RawID: 1, Timestamp: 1795597893, KeyIndex: 1})
		if err != nil {
			t.Fatal(err)
		}
		fc.send(pairSuccessIQ("ps-r", c, dev))
		synctest.Wait() // everything that can run without the store has run
		close(st.release)
		reply := fc.next("answer to pair-success", isIQ("ps-r"))
		synctest.Wait()

		var paired bool
		for _, e := range rec.all() {
			if ps, ok := e.(walink.PairSuccess); ok && ps.ID == dev {
				paired = true
			}
		}
		devs, _ := st.Devices(ctx)
		if len(devs) != 1 {
			t.Fatalf("%d devices stored", len(devs))
		}
		_, signed := reply.Child("pair-device-sign")
		switch {
		case paired != signed:
			t.Fatalf("PairSuccess emitted %v, pair-device-sign sent %v", paired, signed)
		case paired && (devs[0].ID != dev || cli.ID() != dev):
			t.Fatalf("PairSuccess for %v, but the store holds %q and the client %q", dev, devs[0].ID, cli.ID())
		case !paired && (devs[0].Paired() || cli.IsLoggedIn()):
			t.Fatal("pairing refused, but a paired device is stored")
		}
		cli.Close()
	})
}
