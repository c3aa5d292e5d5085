package watest

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

// TestQRLinkLoginLogout walks flow A of e2e_transcript.json: QR pairing
// (with companion_reg_refresh), 515, login, pre-key count and upload,
// passive, ping, an unknown IQ, reconnect, logout, and the 401 after it.
func TestQRLinkLoginLogout(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	dev := linkQR(ctx, t, s, c)
	if dev.User != testNumber || dev.Device != 1 || c.lid.Server != jid.LIDServer || c.lid.Device != 1 {
		t.Fatalf("linked %s lid %s", dev, c.lid)
	}
	devs := s.Phone(testNumber).Devices()
	if len(devs) != 1 || devs[0].JID != dev || devs[0].Platform != "Chrome (Linux)" {
		t.Fatalf("devices = %+v", devs)
	}

	w := c.login(ctx, s)
	count := func() string {
		t.Helper()
		r := w.reply(w.iq("encrypt", "get", binxml.Node{Tag: "count"}))
		cn, ok := r.Child("count")
		if !ok {
			t.Fatalf("count reply: %s", xmlString(r))
		}
		return cn.Attr("value")
	}
	if got := count(); got != "0" {
		t.Fatalf("count = %s, want 0", got)
	}
	if r := w.reply(w.iq("encrypt", "set", c.preKeyUpload(t, 30)...)); r.Attr("type") != "result" {
		t.Fatalf("upload: %s", xmlString(r))
	}
	if got := count(); got != "30" {
		t.Fatalf("count = %s, want 30", got)
	}
	if r := w.reply(w.iq("encrypt", "get", binxml.Node{Tag: "digest"})); r.Attr("type") != "result" {
		t.Fatalf("digest: %s", xmlString(r))
	}
	if r := w.reply(w.iq("passive", "set", binxml.Node{Tag: "active"})); r.Attr("type") != "result" {
		t.Fatalf("passive: %s", xmlString(r))
	}
	if r := w.reply(w.iq("w:p", "get")); r.Attr("type") != "result" {
		t.Fatalf("ping: %s", xmlString(r))
	}
	for _, q := range []struct {
		xmlns string
		child binxml.Node
		want  string
	}{
		{"w", binxml.Node{Tag: "props", Attrs: []binxml.Attr{binxml.A("protocol", "2"), binxml.A("hash", "")}}, "props"},
		{"blocklist", binxml.Node{}, "list"},
		{"privacy", binxml.Node{Tag: "privacy"}, "privacy"},
	} {
		var r binxml.Node
		if q.child.Tag == "" {
			r = w.reply(w.iq(q.xmlns, "get"))
		} else {
			r = w.reply(w.iq(q.xmlns, "get", q.child))
		}
		if _, ok := r.Child(q.want); r.Attr("type") != "result" || !ok {
			t.Fatalf("%s query: %s", q.xmlns, xmlString(r))
		}
	}
	r := w.reply(w.iq("w:profile:picture", "get", binxml.Node{Tag: "picture"}))
	if e, ok := r.Child("error"); r.Attr("type") != "error" || !ok || e.Attr("code") != "501" {
		t.Fatalf("unknown iq: %s", xmlString(r))
	}
	w.close()

	// Reconnect, then log out.
	w = c.login(ctx, s)
	r = w.reply(w.iq("md", "set", binxml.Node{Tag: "remove-companion-device", Attrs: []binxml.Attr{
		binxml.AJ("jid", c.id), binxml.A("reason", "user_initiated"),
	}}))
	if r.Attr("type") != "result" {
		t.Fatalf("logout: %s", xmlString(r))
	}
	// Logged out: the device no longer counts as connected.
	if err := s.Kick(ctx, c.id, "515"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("kick after logout: %v, want ErrNotConnected", err)
	}
	w.close()
	if n := len(s.Phone(testNumber).Devices()); n != 0 {
		t.Fatalf("%d devices after logout", n)
	}
	expectLoginFailure(t, c, s, "401")
}

func expectLoginFailure(t *testing.T, c *companion, s *Server, reason string) {
	t.Helper()
	ctx := testCtx(t)
	w := c.mustConnect(ctx, s, c.loginPayload())
	n := w.expect("failure", func(n binxml.Node) bool { return n.Tag == "success" || n.Tag == "failure" })
	if n.Tag != "failure" || n.Attr("reason") != reason {
		t.Fatalf("login: %s, want failure %s", xmlString(n), reason)
	}
	// The server lingers: the socket stays open until we close it.
	if err := w.waitClosed(100 * time.Millisecond); err == nil {
		t.Fatalf("server closed the socket at once after failure")
	}
	w.close()
}

// preKeyUpload builds the children of an encrypt set IQ with n keys.
func (c *companion) preKeyUpload(t *testing.T, n int) []binxml.Node {
	pks, err := keys.NewPreKeys(rand.Reader, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	list := make([]binxml.Node, 0, n)
	for _, pk := range pks {
		list = append(list, binxml.Node{Tag: "key", Children: []binxml.Node{
			bytesNode("id", keys.PreKeyIDBytes(pk.ID)), bytesNode("value", pk.Public.Bytes()),
		}})
	}
	reg := []byte{byte(c.regID >> 24), byte(c.regID >> 16), byte(c.regID >> 8), byte(c.regID)}
	return []binxml.Node{
		bytesNode("registration", reg),
		bytesNode("type", []byte{keys.DJBType}),
		bytesNode("identity", c.identity.Public.Bytes()),
		{Tag: "list", Children: list},
		{Tag: "skey", Children: []binxml.Node{
			bytesNode("id", keys.PreKeyIDBytes(c.spk.ID)), bytesNode("value", c.spk.Public.Bytes()), bytesNode("signature", c.spk.Signature[:]),
		}},
	}
}

// codeHello sends companion_hello and returns the ref and the ephemeral.
func (c *companion) codeHello(t *testing.T, w *wconn, code, number, display string) (binxml.Node, keys.KeyPair) {
	t.Helper()
	eph, wrapped := c.wrapped(t, code)
	id := w.iq("md", "set", binxml.Node{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{
		binxml.AJ("jid", jid.New(number, jid.DefaultUserServer)), binxml.A("stage", "companion_hello"), binxml.A("should_show_push_notification", "true"),
	}, Children: []binxml.Node{
		bytesNode("link_code_pairing_wrapped_companion_ephemeral_pub", wrapped),
		bytesNode("companion_server_auth_key_pub", c.noise.Public.Bytes()),
		bytesNode("companion_platform_id", []byte("1")),
		bytesNode("companion_platform_display", []byte(display)),
		bytesNode("link_code_pairing_nonce", []byte{0}),
	}})
	return w.reply(id), eph
}

// wrapped returns an ephemeral key pair wrapped with code; PBKDF2 is slow
// under the race detector, so one per code is cached.
func (c *companion) wrapped(t *testing.T, code string) (keys.KeyPair, []byte) {
	t.Helper()
	if w, ok := c.wraps[code]; ok {
		return w.eph, w.wrapped
	}
	eph, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := pairing.WrapKey(rand.Reader, code, eph.Public)
	if err != nil {
		t.Fatal(err)
	}
	if c.wraps == nil {
		c.wraps = map[string]wrappedEph{}
	}
	c.wraps[code] = wrappedEph{eph, wrapped}
	return eph, wrapped
}

type wrappedEph struct {
	eph     keys.KeyPair
	wrapped []byte
}

// codeFinish handles primary_hello and sends companion_finish; it returns
// the finish reply and the derived adv secret.
func (c *companion) codeFinish(t *testing.T, w *wconn, code string, eph keys.KeyPair, ref []byte) (binxml.Node, [32]byte) {
	t.Helper()
	n := w.expect("primary_hello", func(n binxml.Node) bool {
		return n.Tag == "notification" && n.Attr("type") == "link_code_companion_reg"
	})
	w.ackNotification(n)
	reg, _ := n.Child("link_code_companion_reg")
	if reg.Attr("stage") != "primary_hello" || string(childContent(reg, "link_code_pairing_ref")) != string(ref) {
		t.Fatalf("primary_hello: %s", xmlString(n))
	}
	primaryEph, err := pairing.UnwrapKey(code, childContent(reg, "link_code_pairing_wrapped_primary_ephemeral_pub"))
	if err != nil {
		t.Fatal(err)
	}
	primaryID, err := keys.PublicKeyFromBytes(childContent(reg, "primary_identity_pub"))
	if err != nil {
		t.Fatal(err)
	}
	bundle, adv, err := pairing.CompanionFinish(rand.Reader, eph.Private, c.identity, primaryEph, primaryID)
	if err != nil {
		t.Fatal(err)
	}
	id := w.iq("md", "set", binxml.Node{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{
		binxml.AJ("jid", jid.New(testNumber, jid.DefaultUserServer)), binxml.A("stage", "companion_finish"),
	}, Children: []binxml.Node{
		bytesNode("link_code_pairing_wrapped_key_bundle", bundle),
		bytesNode("companion_identity_public", c.identity.Public.Bytes()),
		bytesNode("link_code_pairing_ref", ref),
	}})
	return w.reply(id), adv
}

// TestPairCodeLinkAndUnlink walks flow B: pair code, login, phone-side
// unlink (stream error 401 device_removed), and the 401 failure after it.
func TestPairCodeLinkAndUnlink(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	w.pairDevice()
	code, err := pairing.NewCode(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, eph := c.codeHello(t, w, code, testNumber, "Chrome (Linux)")
	reg, ok := r.Child("link_code_companion_reg")
	if r.Attr("type") != "result" || !ok {
		t.Fatalf("companion_hello: %s", xmlString(r))
	}
	ref := childContent(reg, "link_code_pairing_ref")
	res := codeAsync(ctx, s.Phone(testNumber), code[:4]+"-"+code[4:])
	fin, adv := c.codeFinish(t, w, code, eph, ref)
	if fin.Attr("type") != "result" {
		t.Fatalf("companion_finish: %s", xmlString(fin))
	}
	c.answerPairSuccess(w, adv, false)
	w.expect("515", func(n binxml.Node) bool { return n.Tag == "stream:error" && n.Attr("code") == "515" })
	got := <-res
	if got.err != nil || got.jid != c.id {
		t.Fatalf("EnterCode = %v, %v; companion has %s", got.jid, got.err, c.id)
	}
	if d := s.Phone(testNumber).Devices(); len(d) != 1 || d[0].Platform != "Chrome (Linux)" {
		t.Fatalf("devices = %+v", d)
	}
	w.close()

	w = c.login(ctx, s)
	if err := s.Phone(testNumber).Unlink(ctx, c.id.Device); err != nil {
		t.Fatal(err)
	}
	n := w.expect("stream:error", isTag("stream:error"))
	conflict, ok := n.Child("conflict")
	if n.Attr("code") != "401" || !ok || conflict.Attr("type") != "device_removed" {
		t.Fatalf("unlink: %s", xmlString(n))
	}
	w.close()
	expectLoginFailure(t, c, s, "401")
	if err := s.Phone(testNumber).Unlink(ctx, c.id.Device); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("second unlink: %v", err)
	}
}

func TestPairCodeWrongCode(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	w.pairDevice()
	code, _ := pairing.NewCode(rand.Reader)
	wrong, _ := pairing.NewCode(rand.Reader)
	for wrong == code {
		wrong, _ = pairing.NewCode(rand.Reader)
	}
	r, eph := c.codeHello(t, w, code, testNumber, "Firefox (Mac OS)")
	reg, _ := r.Child("link_code_companion_reg")
	ref := childContent(reg, "link_code_pairing_ref")
	res := codeAsync(ctx, s.Phone(testNumber), wrong)
	// The companion unwraps the primary's key with its own (right) code:
	// garbage, so the bundle it sends cannot be opened by the phone.
	fin, _ := c.codeFinish(t, w, code, eph, ref)
	if e, ok := fin.Child("error"); fin.Attr("type") != "error" || !ok || e.Attr("code") != "400" {
		t.Fatalf("companion_finish with a wrong code: %s", xmlString(fin))
	}
	if got := <-res; !errors.Is(got.err, ErrWrongCode) {
		t.Fatalf("EnterCode = %v, want ErrWrongCode", got.err)
	}
	// The flow is over; a new code on the same connection works.
	if _, err := s.Phone(testNumber).EnterCode(ctx, code); !errors.Is(err, ErrNoPendingCode) {
		t.Fatalf("EnterCode after the flow ended: %v", err)
	}
	code2, _ := pairing.NewCode(rand.Reader)
	r, eph = c.codeHello(t, w, code2, testNumber, "Firefox (Mac OS)")
	reg, _ = r.Child("link_code_companion_reg")
	res = codeAsync(ctx, s.Phone(testNumber), code2)
	fin, adv := c.codeFinish(t, w, code2, eph, childContent(reg, "link_code_pairing_ref"))
	if fin.Attr("type") != "result" {
		t.Fatalf("second finish: %s", xmlString(fin))
	}
	c.answerPairSuccess(w, adv, false)
	if got := <-res; got.err != nil {
		t.Fatalf("second code: %v", got.err)
	}
}

func TestPairCodeRejections(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.PairCodeRateLimit = 2 }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	w.pairDevice()
	errCode := func(r binxml.Node) string {
		e, _ := r.Child("error")
		return e.Attr("code") + " " + e.Attr("text")
	}
	for _, tc := range []struct{ number, display, want string }{
		{"1555123456x", "Chrome (Linux)", "400 bad-request"},
		{testNumber, "Chrome", "400 bad-request"},
		{testNumber, "Chrome (BeOS)", "400 bad-request"},
	} {
		r, _ := c.codeHello(t, w, "ABCD1234", tc.number, tc.display)
		if got := errCode(r); r.Attr("type") != "error" || got != tc.want {
			t.Errorf("hello(%s, %q) = %s, want %s", tc.number, tc.display, xmlString(r), tc.want)
		}
	}
	for i := 0; i < 2; i++ {
		if r, _ := c.codeHello(t, w, "ABCD1234", testNumber, "Chrome (Linux)"); r.Attr("type") != "result" {
			t.Fatalf("hello %d: %s", i, xmlString(r))
		}
	}
	r, _ := c.codeHello(t, w, "ABCD1234", testNumber, "Chrome (Linux)")
	e, _ := r.Child("error")
	if errCode(r) != "429 rate-overlimit" || e.Attr("backoff") == "" {
		t.Fatalf("rate limit: %s", xmlString(r))
	}
	if _, err := s.Phone("15550000000").EnterCode(ctx, "ABCD1234"); !errors.Is(err, ErrNoPendingCode) {
		t.Fatalf("EnterCode without hello: %v", err)
	}
}

func TestScanRefusals(t *testing.T) {
	clock := newFakeClock()
	s := startServer(t, nil, Config{Now: clock.Now})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	if len(refs) != 6 {
		t.Fatalf("%d refs", len(refs))
	}
	phone := s.Phone(testNumber)
	if _, err := phone.ScanQR(ctx, "not a qr"); !errors.Is(err, ErrMalformedQR) {
		t.Errorf("malformed: %v", err)
	}
	if _, err := phone.ScanQR(ctx, c.qr("2@unknown")); !errors.Is(err, ErrUnknownRef) {
		t.Errorf("unknown ref: %v", err)
	}
	other := newCompanion(t)
	if _, err := phone.ScanQR(ctx, other.qr(refs[0])); !errors.Is(err, ErrQRMismatch) {
		t.Errorf("foreign keys: %v", err)
	}
	// First scan → refresh; scanning the same (stale) QR again is refused.
	if _, err := phone.ScanQR(ctx, c.qr(refs[0])); !errors.Is(err, ErrRescan) {
		t.Fatalf("first scan: %v", err)
	}
	if _, err := phone.ScanQR(ctx, c.qr(refs[0])); !errors.Is(err, ErrStaleQR) {
		t.Fatalf("stale scan: %v", err)
	}
	rand.Read(c.advSecret[:])
	// Ref 1 is valid 60 s, ref 2 until 80 s.
	clock.Advance(61 * time.Second)
	if _, err := phone.ScanQR(ctx, c.qr(refs[0])); !errors.Is(err, ErrExpiredRef) {
		t.Fatalf("expired ref: %v", err)
	}
	// Legacy 4-field form without prefix, current ref.
	legacy := pairing.QR{Ref: refs[1], Noise: c.noise.Public, Identity: c.identity.Public, AdvSecret: c.advSecret}
	res := scanAsync(ctx, phone, legacyString(legacy))
	c.answerPairSuccess(w, c.advSecret, false)
	if got := <-res; got.err != nil {
		t.Fatalf("legacy form: %v", got.err)
	}
}

func legacyString(q pairing.QR) string {
	return q.Ref + "," + b64(q.Noise.Bytes()) + "," + b64(q.Identity.Bytes()) + "," + b64(q.AdvSecret[:])
}

func TestTamperedDeviceSignature(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	res := scanAsync(ctx, s.Phone(testNumber), c.qr(refs[0]))
	c.answerPairSuccess(w, c.advSecret, true)
	if got := <-res; !errors.Is(got.err, ErrSignatureRefused) {
		t.Fatalf("tampered reply: %v", got.err)
	}
	if n := len(s.Phone(testNumber).Devices()); n != 0 {
		t.Fatalf("tampered reply linked %d devices", n)
	}
	w.close()
	expectLoginFailure(t, c, s, "401")
}

func TestCompanionRejectsPairSuccess(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	qr := c.qr(refs[0])
	rand.Read(c.advSecret[:]) // the companion now checks with another secret
	res := scanAsync(ctx, s.Phone(testNumber), qr)
	c.answerPairSuccess(w, c.advSecret, false)
	got := <-res
	var iqe *IQError
	if !errors.Is(got.err, ErrPairRejected) || !errors.As(got.err, &iqe) || iqe.Code != 401 || iqe.Text != "hmac-mismatch" {
		t.Fatalf("rejected pair-success: %v", got.err)
	}
}

func TestLoginRefusals(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	c := newCompanion(t)
	c.id = jid.NewAD(testNumber, 9, jid.DefaultUserServer)
	expectLoginFailure(t, c, s, "401") // never linked

	ctx := testCtx(t)
	linkQR(ctx, t, s, c)
	impostor := newCompanion(t) // right JID, wrong noise key
	impostor.id = c.id
	expectLoginFailure(t, impostor, s, "401")

	s.SetScenario(func() Scenario { sc := s.Scenario(); sc.MinClientVersion = "2.3000.1100000000"; return sc }())
	expectLoginFailure(t, c, s, "405")
	c.version[2] = 1100000001
	w := c.login(ctx, s)
	w.close()
}

func TestDictionaryV2(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	c.header = [4]byte{'W', 'A', 6, 2}
	dev := linkQR(ctx, t, s, c)
	if dev.Device != 1 {
		t.Fatalf("linked %s", dev)
	}
	w := c.login(ctx, s)
	if r := w.reply(w.iq("w:p", "get")); r.Attr("type") != "result" {
		t.Fatalf("ping over v2: %s", xmlString(r))
	}
}

// TestEdgeRoutingPreIntro: Baileys and whatsapp-rust put an ED pre-intro
// before the header; the server must accept and ignore it.
func TestEdgeRoutingPreIntro(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	c.edge = []byte{0x08, 0x02, 0x10, 0x05}
	linkQR(ctx, t, s, c)
	if _, err := s.AwaitNode(ctx, func(e Event) bool { return strings.Contains(e.Note, "edge-routing pre-intro of 4 bytes") }); err != nil {
		t.Fatal(err)
	}
}

func TestKickAndReplace(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	linkQR(ctx, t, s, c)

	w := c.login(ctx, s)
	w2 := c.login(ctx, s) // same device again: the first is replaced
	n := w.expect("conflict", isTag("stream:error"))
	if cf, ok := n.Child("conflict"); !ok || cf.Attr("type") != "replaced" {
		t.Fatalf("replaced: %s", xmlString(n))
	}
	w.close()
	if err := s.Kick(ctx, c.id, "515"); err != nil {
		t.Fatal(err)
	}
	if n := w2.expect("515", isTag("stream:error")); n.Attr("code") != "515" {
		t.Fatalf("kick 515: %s", xmlString(n))
	}
	w2.close()
	if err := s.Kick(ctx, c.id, "replaced"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("kick offline: %v", err)
	}
	w3 := c.login(ctx, s)
	if err := s.Kick(ctx, c.id, "401"); err != nil {
		t.Fatal(err)
	}
	n = w3.expect("401", isTag("stream:error"))
	if cf, ok := n.Child("conflict"); n.Attr("code") != "401" || !ok || cf.Attr("type") != "device_removed" {
		t.Fatalf("kick 401: %s", xmlString(n))
	}
	if err := s.Kick(ctx, c.id, "bogus"); !errors.Is(err, ErrBadScenario) {
		t.Fatalf("bad kind: %v", err)
	}
}

func TestStateDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	sc := DefaultScenario()
	sc.QRRefresh = false
	sc.FirstStanzaDelayMS = 1
	s1, err := Start(ctx, Config{StateDir: dir, Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	c := newCompanion(t)
	linkQR(ctx, t, s1, c)
	root := s1.RootKey()
	s1.Close()

	s2 := startServer(t, func(s *Scenario) { *s = sc }, Config{StateDir: dir})
	if !s2.RootKey().Equal(root) {
		t.Fatal("root key changed across restart")
	}
	if d := s2.Phone(testNumber).Devices(); len(d) != 1 || d[0].JID != c.id {
		t.Fatalf("devices after restart: %+v", d)
	}
	w := c.login(ctx, s2)
	if r := w.reply(w.iq("encrypt", "set", c.preKeyUpload(t, 5)...)); r.Attr("type") != "result" {
		t.Fatalf("upload: %s", xmlString(r))
	}
	w.close()
	s2.Close()

	// Pre-key counts and unlinks persist too.
	s3 := startServer(t, func(s *Scenario) { *s = sc }, Config{StateDir: dir})
	w = c.login(ctx, s3)
	r := w.reply(w.iq("encrypt", "get", binxml.Node{Tag: "count"}))
	if cn, _ := r.Child("count"); cn.Attr("value") != "5" {
		t.Fatalf("count after restart: %s", xmlString(r))
	}
	if err := s3.Phone(testNumber).Unlink(ctx, c.id.Device); err != nil {
		t.Fatal(err)
	}
	w.close()
	s3.Close()
	s4 := startServer(t, func(s *Scenario) { *s = sc }, Config{StateDir: dir})
	expectLoginFailure(t, c, s4, "401")
}

func TestRefreshCodeAndPing(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	w.pairDevice()
	phone := s.Phone(testNumber)
	if err := phone.RefreshCode(ctx, true); !errors.Is(err, ErrNoPendingCode) {
		t.Fatalf("refresh without a code: %v", err)
	}
	r, _ := c.codeHello(t, w, "ABCD1234", testNumber, "Chrome (Linux)")
	reg, _ := r.Child("link_code_companion_reg")
	ref := string(childContent(reg, "link_code_pairing_ref"))
	if err := phone.RefreshCode(ctx, true); err != nil {
		t.Fatal(err)
	}
	n := w.expect("refresh_code", isTag("notification"))
	rc, _ := n.Child("link_code_companion_reg")
	if n.Attr("type") != "link_code_companion_reg" || rc.Attr("stage") != "refresh_code" || rc.Attr("force_manual_refresh") != "true" ||
		string(childContent(rc, "link_code_pairing_ref")) != ref {
		t.Fatalf("refresh_code: %s", xmlString(n))
	}
	w.close()

	s.SetScenario(func() Scenario { sc := s.Scenario(); sc.QRRefresh = false; return sc }())
	linkQR(ctx, t, s, c)
	wl := c.login(ctx, s)
	done := make(chan error, 1)
	go func() { done <- s.Ping(ctx, c.id) }()
	p := wl.expect("server ping", func(n binxml.Node) bool { return n.Tag == "iq" && n.Attr("xmlns") == "urn:xmpp:ping" })
	wl.ackResult(p)
	if err := <-done; err != nil {
		t.Fatalf("ping: %v", err)
	}
}
