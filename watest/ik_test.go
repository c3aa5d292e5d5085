package watest

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/transport"
)

// cacheFromLogin logs in with a full handshake and returns the server
// chain the companion would store for its next, resumed, connection
// (CHANGES-2026 §7: the first connect after pairing is XX).
func cacheFromLogin(t *testing.T, s *Server, c *companion) *noise.CertInfo {
	t.Helper()
	c.resume = nil
	w := c.login(testCtx(t), s)
	defer w.close()
	if w.tc.Mode() != noise.ModeXX {
		t.Fatalf("first login ran %v", w.tc.Mode())
	}
	cert := w.tc.ServerCert()
	if cert == nil || !cert.LeafKey.Equal(s.static.Public) {
		t.Fatalf("cached chain %+v", cert)
	}
	return cert
}

func awaitNote(t *testing.T, s *Server, note string) {
	t.Helper()
	if _, err := s.AwaitNode(testCtx(t), func(e Event) bool { return strings.Contains(e.Note, note) }); err != nil {
		t.Fatalf("no %q in the node log: %v", note, err)
	}
}

// TestIKResume: a companion linked and logged in with XX resumes with IK
// and is served exactly like an XX login.
func TestIKResume(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	linkQR(ctx, t, s, c)
	c.resume = cacheFromLogin(t, s, c)

	w := c.login(ctx, s)
	if w.tc.Mode() != noise.ModeIK {
		t.Fatalf("resumed login ran %v, want IK", w.tc.Mode())
	}
	awaitNote(t, s, "handshake done (IK resume, dictionary v3)")
	if r := w.reply(w.iq("w:p", "get")); r.Attr("type") != "result" {
		t.Fatalf("ping after IK: %s", xmlString(r))
	}
	w.close()

	// An impostor with the JID and a valid cache but another noise key
	// completes the handshake and is refused like an XX login would be.
	impostor := newCompanion(t)
	impostor.id, impostor.resume = c.id, c.resume
	expectLoginFailure(t, impostor, s, "401")
	// So is a device that was never linked.
	stranger := newCompanion(t)
	stranger.id, stranger.resume = jid.NewAD(testNumber, 77, jid.DefaultUserServer), c.resume
	expectLoginFailure(t, stranger, s, "401")
}

// TestIKKnob: the scenario's ik answers (fallback as after a key
// rotation, refuse as an XX-only server), switched at run time.
func TestIKKnob(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	linkQR(ctx, t, s, c)
	cache := cacheFromLogin(t, s, c)

	set := func(ik string) {
		sc := s.Scenario()
		sc.IK = ik
		if err := s.UpdateScenario(sc); err != nil {
			t.Fatal(err)
		}
	}

	set(IKFallback)
	c.resume = cache
	w := c.login(ctx, s)
	if w.tc.Mode() != noise.ModeXXFallback {
		t.Fatalf("ik=fallback ran %v", w.tc.Mode())
	}
	if got := w.tc.ServerCert(); got == nil || !got.LeafKey.Equal(s.static.Public) {
		t.Fatalf("chain after fallback %+v", got)
	}
	awaitNote(t, s, "handshake done (XXfallback after an IK resume, dictionary v3)")
	w.close()

	set(IKRefuse)
	_, err := c.connect(ctx, s, c.loginPayload())
	if !errors.Is(err, transport.ErrResumeFailed) {
		t.Fatalf("ik=refuse: %v, want transport.ErrResumeFailed", err)
	}
	awaitNote(t, s, "unsupported handshake pattern")
	// What a client does next: forget the cache, full handshake.
	c.resume = nil
	w = c.login(ctx, s)
	if w.tc.Mode() != noise.ModeXX {
		t.Fatalf("after refusal ran %v", w.tc.Mode())
	}
	w.close()

	set(IKAccept)
	c.resume = cache
	w = c.login(ctx, s)
	if w.tc.Mode() != noise.ModeIK {
		t.Fatalf("ik=accept ran %v", w.tc.Mode())
	}
	w.close()
}

func TestIKScenarioKnob(t *testing.T) {
	if DefaultScenario().IK != IKAccept {
		t.Fatal("default ik is not accept")
	}
	for _, ik := range []string{"", IKAccept, IKFallback, IKRefuse} {
		sc := DefaultScenario()
		sc.IK = ik
		if err := sc.Validate(); err != nil {
			t.Errorf("ik %q: %v", ik, err)
		}
	}
	sc := DefaultScenario()
	sc.IK = "sometimes"
	if err := sc.Validate(); !errors.Is(err, ErrBadScenario) {
		t.Errorf("ik sometimes: %v", err)
	}
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	sc = DefaultScenario()
	sc.RegisterFlags(fs)
	if err := fs.Parse([]string{"--ik=refuse"}); err != nil || sc.IK != IKRefuse || sc.ikPolicy() != noise.IKRefuse {
		t.Fatalf("--ik=refuse gave %q %v", sc.IK, err)
	}
}

func TestIKControlAPI(t *testing.T) {
	s := startServer(t, nil, Config{})
	base := s.ControlURL()
	if code, cfg := doJSON(t, "GET", base+"/config", nil); code != 200 || cfg["ik"] != IKAccept {
		t.Fatalf("GET /config = %d %v", code, cfg)
	}
	if code, cfg := doJSON(t, "PUT", base+"/config", map[string]any{"ik": IKFallback}); code != 200 || cfg["ik"] != IKFallback {
		t.Fatalf("PUT ik=fallback = %d %v", code, cfg)
	}
	if code, out := doJSON(t, "PUT", base+"/config", map[string]any{"ik": "often"}); code != 400 || out["error"] == "" {
		t.Fatalf("PUT ik=often = %d %v", code, out)
	}
	if s.Scenario().IK != IKFallback {
		t.Fatalf("ik after a bad PUT: %q", s.Scenario().IK)
	}
}

// Certificate checks hold for a resume too: an accepted resume whose
// chain is under another root fails before the pivot (the client then
// drops its cache), and a fallback with a foreign leaf fails as XX would.
func TestIKCertFaults(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	linkQR(ctx, t, s, c)
	cache := cacheFromLogin(t, s, c)
	for _, tc := range []struct {
		name   string
		ik     string
		faults Faults
		reason noise.CertReason
		resume bool // ErrResumeFailed expected
	}{
		{"accept, bad root", IKAccept, Faults{BadCert: true}, noise.CertBadRootSignature, true},
		{"accept, foreign leaf", IKAccept, Faults{LeafMismatch: true}, noise.CertLeafKeyMismatch, true},
		{"fallback, foreign leaf", IKFallback, Faults{LeafMismatch: true}, noise.CertLeafKeyMismatch, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := s.Scenario()
			sc.IK, sc.Faults = tc.ik, tc.faults
			if err := s.UpdateScenario(sc); err != nil {
				t.Fatal(err)
			}
			c.resume = cache
			_, err := c.connect(ctx, s, c.loginPayload())
			var ce *noise.CertError
			if !errors.As(err, &ce) || ce.Reason != tc.reason || errors.Is(err, transport.ErrResumeFailed) != tc.resume {
				t.Fatalf("got %v, want %v (resume failed: %v)", err, tc.reason, tc.resume)
			}
		})
	}
}
