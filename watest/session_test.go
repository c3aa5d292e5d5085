package watest

// Socket-free tests of the server's decisions: a session is driven with
// nodes and its output frames are recorded.

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/waproto"
)

// recorder is a frameConn that keeps what the session writes.
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	closed bool
}

func (r *recorder) WriteFrame(_ context.Context, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("closed")
	}
	r.frames = append(r.frames, append([]byte(nil), p...))
	return nil
}

func (r *recorder) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

func (r *recorder) nodes(t *testing.T) []binxml.Node {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []binxml.Node
	for _, f := range r.frames {
		n, err := binxml.Unmarshal(f)
		if err != nil {
			t.Fatalf("session wrote an undecodable frame: %v", err)
		}
		out = append(out, n)
	}
	r.frames = nil
	return out
}

// testSession makes a server without a listener and one session on it.
func testSession(t testing.TB, mutate func(*Scenario)) (*Server, *session, *recorder) {
	t.Helper()
	sc := DefaultScenario()
	sc.FirstStanzaDelayMS = 0
	if mutate != nil {
		mutate(&sc)
	}
	s, err := newServer(Config{Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	static, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sess := s.newSession(1, rec, binxml.DictV3, static.Public)
	t.Cleanup(func() {
		s.dropSession(sess)
		s.Close()
	})
	return s, sess, rec
}

func one(t *testing.T, rec *recorder) binxml.Node {
	t.Helper()
	ns := rec.nodes(t)
	if len(ns) != 1 {
		t.Fatalf("session wrote %d nodes, want 1", len(ns))
	}
	return ns[0]
}

func TestBeginDecisions(t *testing.T) {
	c := newCompanion(t)
	ctx := context.Background()

	t.Run("registration", func(t *testing.T) {
		s, sess, rec := testSession(t, func(sc *Scenario) { sc.RefCount = 4 })
		if err := sess.begin(ctx, c.registrationPayload()); err != nil {
			t.Fatal(err)
		}
		n := one(t, rec)
		pd, ok := n.Child("pair-device")
		if !ok || len(pd.Children) != 4 || n.Attr("xmlns") != "md" || n.Attr("type") != "set" {
			t.Fatalf("got %s", xmlString(n))
		}
		for _, r := range pd.Children {
			if !strings.HasPrefix(string(r.Content), "2@") || len(r.Content) != 82 {
				t.Fatalf("ref %q", r.Content)
			}
		}
		if len(s.refs) != 4 || sess.reg.identity != c.identity.Public || sess.reg.regID != c.regID {
			t.Fatalf("registration not recorded: %+v", sess.reg)
		}
	})
	t.Run("bad signed pre-key", func(t *testing.T) {
		_, sess, rec := testSession(t, nil)
		bad := *c
		bad.spk.Signature[10] ^= 1
		if err := sess.begin(ctx, bad.registrationPayload()); err != nil {
			t.Fatal(err)
		}
		// Not known to be refused by WhatsApp: accepted, with a warning.
		if n := one(t, rec); n.Attr("xmlns") != "md" || n.Attr("type") != "set" {
			t.Fatalf("got %s", xmlString(n))
		}
		// (the warning comes when the device is linked: TestLenientSessionIQs)
	})
	t.Run("identity not 32 bytes", func(t *testing.T) {
		_, sess, rec := testSession(t, nil)
		var p waproto.ClientPayload
		if err := proto.Unmarshal(c.registrationPayload(), &p); err != nil {
			t.Fatal(err)
		}
		p.DevicePairingData.EIdent = p.DevicePairingData.EIdent[:31]
		b, _ := proto.Marshal(&p)
		if err := sess.begin(ctx, b); err != nil {
			t.Fatal(err)
		}
		if n := one(t, rec); n.Tag != "failure" || n.Attr("reason") != "400" {
			t.Fatalf("got %s", xmlString(n))
		}
	})
	t.Run("garbage payload", func(t *testing.T) {
		_, sess, rec := testSession(t, nil)
		if err := sess.begin(ctx, []byte{0xff, 0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
		if n := one(t, rec); n.Tag != "failure" || n.Attr("reason") != "400" {
			t.Fatalf("got %s", xmlString(n))
		}
	})
	t.Run("old version", func(t *testing.T) {
		_, sess, rec := testSession(t, func(sc *Scenario) { sc.MinClientVersion = "2.3000.1031080783" })
		if err := sess.begin(ctx, c.registrationPayload()); err != nil {
			t.Fatal(err)
		}
		if n := one(t, rec); n.Tag != "failure" || n.Attr("reason") != "405" {
			t.Fatalf("got %s", xmlString(n))
		}
	})
	t.Run("unknown login", func(t *testing.T) {
		_, sess, rec := testSession(t, nil)
		lc := *c
		lc.id = jid.NewAD(testNumber, 3, jid.DefaultUserServer)
		if err := sess.begin(ctx, lc.loginPayload()); err != nil {
			t.Fatal(err)
		}
		n := one(t, rec)
		if n.Tag != "failure" || n.Attr("reason") != "401" || n.Attr("location") == "" {
			t.Fatalf("got %s", xmlString(n))
		}
		// Ended: further stanzas are ignored.
		_ = sess.handle(ctx, binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1"), binxml.A("type", "get"), binxml.A("xmlns", "w:p")}})
		if ns := rec.nodes(t); len(ns) != 0 {
			t.Fatalf("answered after failure: %d nodes", len(ns))
		}
	})
}

func iqNode(id, typ, xmlns string, children ...binxml.Node) binxml.Node {
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", id), binxml.AJ("to", jid.ServerJID), binxml.A("type", typ), binxml.A("xmlns", xmlns)}}
	if len(children) > 0 {
		n.Children = children
	}
	return n
}

func TestIQDecisionsBeforeLogin(t *testing.T) {
	c := newCompanion(t)
	ctx := context.Background()
	_, sess, rec := testSession(t, nil)
	if err := sess.begin(ctx, c.registrationPayload()); err != nil {
		t.Fatal(err)
	}
	rec.nodes(t)
	for _, tc := range []struct {
		in   binxml.Node
		want string // "result" or the error code
	}{
		{iqNode("1", "get", "w:p"), "result"},
		{iqNode("2", "get", "encrypt", binxml.Node{Tag: "count"}), "result"}, // lenient: count 0
		{iqNode("3", "get", "usync", binxml.Node{Tag: "usync"}), "501"},
		{iqNode("4", "set", "md", binxml.Node{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.A("stage", "companion_finish")}}), "400"},
		{iqNode("5", "set", "md", binxml.Node{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.A("stage", "bogus")}}), "400"},
	} {
		if err := sess.handle(ctx, tc.in); err != nil {
			t.Fatal(err)
		}
		n := one(t, rec)
		got := n.Attr("type")
		if e, ok := n.Child("error"); ok {
			got = e.Attr("code")
		}
		if n.Attr("id") != tc.in.Attr("id") || got != tc.want {
			t.Errorf("%s → %s, want %s", xmlString(tc.in), xmlString(n), tc.want)
		}
		if from, ok := n.AttrJID("from"); !ok || from != jid.ServerJID {
			t.Errorf("reply without typed from: %s", xmlString(n))
		}
	}
	// No id, results, acks, telemetry: no answer.
	for _, in := range []binxml.Node{
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "get"), binxml.A("xmlns", "w:p")}},
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "9"), binxml.A("type", "result")}},
		{Tag: "ack", Attrs: []binxml.Attr{binxml.A("id", "9"), binxml.A("class", "notification")}},
		{Tag: "ib", Children: []binxml.Node{{Tag: "unified_session", Attrs: []binxml.Attr{binxml.A("id", "1")}}}},
	} {
		if err := sess.handle(ctx, in); err != nil {
			t.Fatal(err)
		}
		if ns := rec.nodes(t); len(ns) != 0 {
			t.Errorf("%s answered with %s", xmlString(in), xmlString(ns[0]))
		}
	}
}

// FuzzSessionFrames feeds arbitrary frame plaintexts to a registration
// session: whatever the client sends, the server must not panic and must
// only write decodable nodes.
func FuzzSessionFrames(f *testing.F) {
	for _, n := range []binxml.Node{
		iqNode("1", "get", "w:p"),
		iqNode("2", "set", "md", binxml.Node{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{binxml.AJ("jid", jid.New(testNumber, jid.DefaultUserServer)), binxml.A("stage", "companion_hello")}}),
		iqNode("3", "set", "encrypt", binxml.Node{Tag: "registration", Content: []byte{1, 2, 3, 4}}),
		iqNode("4", "set", "md", binxml.Node{Tag: "remove-companion-device"}),
	} {
		b, err := binxml.Marshal(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c := newCompanion(f)
	payload := c.registrationPayload()
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, sess, rec := testSession(t, nil)
		if err := sess.begin(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
		n, err := sess.dict.Unmarshal(frame)
		if err != nil {
			return
		}
		_ = sess.handle(context.Background(), n)
		rec.nodes(t)
	})
}

func TestScenarioValidate(t *testing.T) {
	if err := DefaultScenario().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Scenario){
		"version":   func(s *Scenario) { s.MinClientVersion = "2.3000" },
		"refs":      func(s *Scenario) { s.RefCount = 0 },
		"ttl":       func(s *Scenario) { s.RefTTLNext = 0 },
		"rate":      func(s *Scenario) { s.PairCodeRateLimit = -1 },
		"delay":     func(s *Scenario) { s.FirstStanzaDelayMS = -1 },
		"platform":  func(s *Scenario) { s.Platform = "" },
		"drop":      func(s *Scenario) { s.Faults.DropAfter = "lunch" },
		"faultwait": func(s *Scenario) { s.Faults.DelayMS = 1e6 },
	} {
		sc := DefaultScenario()
		mutate(&sc)
		if err := sc.Validate(); !errors.Is(err, ErrBadScenario) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Start(context.Background(), Config{Scenario: &Scenario{}}); !errors.Is(err, ErrBadScenario) {
		t.Errorf("Start with a zero scenario: %v", err)
	}
}

func TestRefWindows(t *testing.T) {
	sc := DefaultScenario()
	t0 := time.Unix(1000, 0)
	for i, want := range []int64{1060, 1080, 1100, 1120, 1140, 1160} {
		from, until := sc.refWindow(t0, i)
		if until.Unix() != want || (i > 0 && from.Unix() != want-20) {
			t.Errorf("ref %d: %v..%v, want until %d", i, from.Unix(), until.Unix(), want)
		}
	}
}

func TestVersions(t *testing.T) {
	v, err := parseVersion("2.3000.1031080782")
	if err != nil || v != (version{2, 3000, 1031080782}) || v.String() != "2.3000.1031080782" {
		t.Fatalf("parse: %v %v", v, err)
	}
	for _, bad := range []string{"", "2.3000", "2.x.1", "2.3000.99999999999"} {
		if _, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
	if !(version{2, 3000, 5}).less(version{2, 3000, 6}) || (version{2, 3001, 0}).less(version{2, 3000, 9}) {
		t.Fatal("less")
	}
}

func TestRegisterFlags(t *testing.T) {
	sc := DefaultScenario()
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	sc.RegisterFlags(fs)
	if err := fs.Parse([]string{"--qr-refresh=false", "--min-client-version", "2.3000.7", "--ref-count=2", "--pair-code-rate-limit=3", "--fault-drop-after=login"}); err != nil {
		t.Fatal(err)
	}
	if sc.QRRefresh || sc.MinClientVersion != "2.3000.7" || sc.RefCount != 2 || sc.PairCodeRateLimit != 3 || sc.Faults.DropAfter != "login" || sc.RefTTLFirst != 60 {
		t.Fatalf("flags gave %+v", sc)
	}
}

func TestRedact(t *testing.T) {
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1")}, Children: []binxml.Node{
		{Tag: "pair-success", Children: []binxml.Node{
			{Tag: "device-identity", Content: make([]byte, 150)},
			{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", "android")}},
		}},
		{Tag: "ref", Content: []byte("2@abc")},
	}}
	x := xmlString(redact(n))
	want := `<iq id="1"><pair-success><device-identity>[redacted 150 bytes]</device-identity><platform name="android"/></pair-success><ref>2@abc</ref></iq>`
	if x != want {
		t.Fatalf("got  %s\nwant %s", x, want)
	}
	if len(n.Children[0].Children[0].Content) != 150 || n.Children[0].Children[0].Content[0] != 0 {
		t.Fatal("redact changed its input")
	}
}

func TestAwaitNode(t *testing.T) {
	s, _, _ := testSession(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go s.info(7, "later")
	e, err := s.AwaitNode(ctx, func(e Event) bool { return e.Note == "later" })
	if err != nil || e.Conn != 7 || e.Seq == 0 {
		t.Fatalf("AwaitNode = %+v, %v", e, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := s.AwaitNode(short, func(Event) bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AwaitNode without match: %v", err)
	}
}

func TestStateFileIsPrivateAndAtomic(t *testing.T) {
	dir := t.TempDir()
	sc := DefaultScenario()
	s, err := newServer(Config{StateDir: dir, Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(filepath.Join(dir, stateFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v", fi.Mode())
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".state-*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFileName), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newServer(Config{StateDir: dir, Scenario: &sc}); err == nil {
		t.Fatal("corrupt state accepted")
	}
}

func TestPhoneDeterministic(t *testing.T) {
	s1, _, _ := testSession(t, nil)
	s2, _, _ := testSession(t, nil)
	p1, p2 := s1.Phone(testNumber), s2.Phone(testNumber)
	if !p1.AccountKey().Equal(p2.AccountKey()) || p1.LID() != p2.LID() || p1.rawID != p2.rawID {
		t.Fatal("phone identity not derived from the number")
	}
	if p1.AccountKey().Equal(s1.Phone("15550000001").AccountKey()) {
		t.Fatal("two numbers share a key")
	}
	if len(p1.LID().User) != 15 || p1.JID().String() != testNumber+"@s.whatsapp.net" {
		t.Fatalf("lid %s jid %s", p1.LID(), p1.JID())
	}
}

func TestDeviceNumbers(t *testing.T) {
	s, _, _ := testSession(t, nil)
	p := s.Phone(testNumber)
	s.mu.Lock()
	defer s.mu.Unlock()
	for want := uint16(1); want <= 3; want++ {
		d, ok := p.reserveDeviceLocked()
		if !ok || d != want {
			t.Fatalf("reserve = %d %v, want %d", d, ok, want)
		}
		p.devices[d] = &linkedDevice{device: d}
		delete(p.reserved, d)
	}
	delete(p.devices, 2) // unlinked: reused only after the cycle wraps
	p.nextDevice = 255
	for _, want := range []uint16{255, 2, 4} {
		d, ok := p.reserveDeviceLocked()
		if !ok || d != want {
			t.Fatalf("reserve = %d %v, want %d", d, ok, want)
		}
	}
	for d := uint16(1); d <= maxDevice; d++ {
		p.devices[d] = &linkedDevice{device: d}
	}
	if _, ok := p.reserveDeviceLocked(); ok {
		t.Fatal("reserved a device number on a full phone")
	}
}
