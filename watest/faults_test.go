package watest

import (
	"errors"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/noise"
)

func TestFaultBadCertificates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
	}{{"bad_cert", Faults{BadCert: true}}, {"leaf_mismatch", Faults{LeafMismatch: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(sc *Scenario) { sc.Faults = tc.faults }, Config{})
			c := newCompanion(t)
			_, err := c.connect(testCtx(t), s, c.registrationPayload())
			if !errors.Is(err, noise.ErrBadCertificate) {
				t.Fatalf("handshake: %v, want ErrBadCertificate", err)
			}
		})
	}
}

func TestFaultDropHandshake2(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Faults.DropAfter = DropHandshake2 }, Config{})
	c := newCompanion(t)
	// The client finishes its side (message 3 needs no answer), but the
	// connection ends before any stanza.
	w, err := c.connect(testCtx(t), s, c.registrationPayload())
	if err != nil {
		return
	}
	defer w.close()
	select {
	case n, ok := <-w.nodes:
		if ok {
			t.Fatalf("got %s after a dropped handshake", xmlString(n))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("connection not dropped")
	}
}

func TestFaultDropPoints(t *testing.T) {
	t.Run(DropPairDevice, func(t *testing.T) {
		s := startServer(t, func(sc *Scenario) { sc.Faults.DropAfter = DropPairDevice }, Config{})
		c := newCompanion(t)
		w := c.mustConnect(testCtx(t), s, c.registrationPayload())
		w.expect("pair-device", hasChild("pair-device"))
		if err := w.waitClosed(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run(DropPairSuccess, func(t *testing.T) {
		s := startServer(t, func(sc *Scenario) { sc.Faults.DropAfter = DropPairSuccess; sc.QRRefresh = false }, Config{})
		ctx := testCtx(t)
		c := newCompanion(t)
		w := c.mustConnect(ctx, s, c.registrationPayload())
		refs := w.pairDevice()
		_, err := s.Phone(testNumber).ScanQR(ctx, c.qr(refs[0]))
		if !errors.Is(err, ErrDisconnected) {
			t.Fatalf("scan: %v", err)
		}
		w.expect("pair-success", hasChild("pair-success"))
		if err := w.waitClosed(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		if n := len(s.Phone(testNumber).Devices()); n != 0 {
			t.Fatalf("%d devices", n)
		}
	})
	for _, point := range []string{DropBefore515, DropAfter515} {
		t.Run(point, func(t *testing.T) {
			s := startServer(t, func(sc *Scenario) { sc.Faults.DropAfter = point; sc.QRRefresh = false; sc.LingerMS = 5000 }, Config{})
			ctx := testCtx(t)
			c := newCompanion(t)
			w := c.mustConnect(ctx, s, c.registrationPayload())
			refs := w.pairDevice()
			res := scanAsync(ctx, s.Phone(testNumber), c.qr(refs[0]))
			c.answerPairSuccess(w, c.advSecret, false)
			if got := <-res; got.err != nil {
				t.Fatalf("scan: %v", got.err)
			}
			got515 := false
			deadline := time.After(2 * time.Second)
		loop:
			for {
				select {
				case n, ok := <-w.nodes:
					if !ok {
						break loop
					}
					got515 = got515 || (n.Tag == "stream:error" && n.Attr("code") == "515")
				case <-deadline:
					t.Fatal("socket not dropped")
				}
			}
			if got515 != (point == DropAfter515) {
				t.Fatalf("515 received = %v", got515)
			}
			if n := len(s.Phone(testNumber).Devices()); n != 1 {
				t.Fatalf("%d devices", n)
			}
		})
	}
	t.Run(DropLogin, func(t *testing.T) {
		s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
		ctx := testCtx(t)
		c := newCompanion(t)
		linkQR(ctx, t, s, c)
		sc := s.Scenario()
		sc.Faults.DropAfter = DropLogin
		s.SetScenario(sc)
		w := c.login(ctx, s)
		if err := w.waitClosed(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFaultFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
	}{{"garbage_frame", Faults{GarbageFrame: true}}, {"oversize_frame", Faults{OversizeFrame: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(sc *Scenario) { sc.Faults = tc.faults }, Config{})
			c := newCompanion(t)
			w := c.mustConnect(testCtx(t), s, c.registrationPayload())
			if err := w.waitClosed(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			if w.err == nil {
				t.Fatal("reader ended without an error")
			}
		})
	}
}

func TestFaultDelayAndPacing(t *testing.T) {
	const first, delay = 150, 100
	s := startServer(t, func(sc *Scenario) { sc.FirstStanzaDelayMS = first }, Config{})
	c := newCompanion(t)
	start := time.Now()
	w := c.mustConnect(testCtx(t), s, c.registrationPayload())
	w.pairDevice()
	if el := time.Since(start); el < first*time.Millisecond {
		t.Fatalf("pair-device after %v, want >= %d ms", el, first)
	}
	sc := s.Scenario()
	sc.Faults.DelayMS = delay
	s.SetScenario(sc)
	start = time.Now()
	w.reply(w.iq("w:p", "get"))
	if el := time.Since(start); el < delay*time.Millisecond {
		t.Fatalf("reply after %v, want >= %d ms", el, delay)
	}
}

func TestLingerClosesEventually(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.LingerMS = 200 }, Config{})
	c := newCompanion(t)
	c.id.User, c.id.Device = testNumber, 4
	w := c.mustConnect(testCtx(t), s, c.loginPayload())
	n := w.expect("failure", isTag("failure"))
	if n.Attr("reason") != "401" {
		t.Fatalf("got %s", xmlString(n))
	}
	// Stanzas after the failure are ignored, not answered.
	w.iq("w:p", "get")
	start := time.Now()
	for {
		select {
		case n, ok := <-w.nodes:
			if !ok {
				if el := time.Since(start); el > 2*time.Second {
					t.Fatalf("closed after %v", el)
				}
				return
			}
			t.Fatalf("answered after failure: %s", xmlString(n))
		case <-time.After(3 * time.Second):
			t.Fatal("server never closed a lingering socket")
		}
	}
}

var _ = binxml.Node{}
