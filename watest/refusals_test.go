package watest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/pairing"
)

// TestQRForms: the phone accepts every QR form clients send (CHANGES-2026
// §2): with or without the wa.me prefix, 4 or 5 fields, both for the scan
// that triggers companion_reg_refresh and for the one that links.
func TestQRForms(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)
	legacy := func(c *companion, ref string) string {
		return legacyString(pairing.QR{Ref: ref, Noise: c.noise.Public, Identity: c.identity.Public, AdvSecret: c.advSecret})
	}
	for _, form := range []struct {
		name   string
		render func(c *companion, ref string) string
	}{
		{"prefix, 5 fields", func(c *companion, ref string) string { return c.qr(ref) }},
		{"bare, 5 fields", func(c *companion, ref string) string { return strings.TrimPrefix(c.qr(ref), pairing.QRURLPrefix) }},
		{"prefix, 4 fields", func(c *companion, ref string) string { return pairing.QRURLPrefix + legacy(c, ref) }},
		{"bare, 4 fields", legacy},
	} {
		t.Run(form.name, func(t *testing.T) {
			c := newCompanion(t)
			w := c.mustConnect(ctx, s, c.registrationPayload())
			refs := w.pairDevice()
			qr := form.render(c, refs[0])
			if n := strings.Count(qr, ","); (n != 3 && n != 4) || strings.HasPrefix(qr, "https://") != strings.HasPrefix(form.name, "prefix") {
				t.Fatalf("test renders the wrong form: %q", qr)
			}
			phone := s.Phone(testNumber)
			if _, err := phone.ScanQR(ctx, qr); !errors.Is(err, ErrRescan) {
				t.Fatalf("first scan: %v, want ErrRescan", err)
			}
			n := w.expect("companion_reg_refresh", isTag("notification"))
			if _, ok := n.Child("companion_reg_refresh"); n.Attr("type") != "companion_reg_refresh" || !ok {
				t.Fatalf("refresh: %s", xmlString(n))
			}
			w.ackNotification(n)
			if _, err := rand.Read(c.advSecret[:]); err != nil {
				t.Fatal(err)
			}
			res := scanAsync(ctx, phone, form.render(c, refs[0]))
			c.answerPairSuccess(w, c.advSecret, false)
			w.expect("515", func(n binxml.Node) bool { return n.Tag == "stream:error" && n.Attr("code") == "515" })
			if got := <-res; got.err != nil || got.jid != c.id {
				t.Fatalf("scan = %v, %v; companion has %s", got.jid, got.err, c.id)
			}
			w.close()
		})
	}
}

// postJSON is doJSON for use off the test goroutine: it returns errors
// instead of failing the test.
func postJSON(ctx context.Context, url string, body any) (int, map[string]any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("decode: %w", err)
	}
	return resp.StatusCode, out, nil
}

type httpResult struct {
	code int
	out  map[string]any
	err  error
}

func postAsync(ctx context.Context, url string, body any) <-chan httpResult {
	ch := make(chan httpResult, 1)
	go func() {
		code, out, err := postJSON(ctx, url, body)
		ch <- httpResult{code, out, err}
	}()
	return ch
}

// wantHTTPError checks a control API refusal: the status and an
// {"error": "…"} body mentioning want.
func wantHTTPError(t *testing.T, what string, r httpResult, status int, want string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	msg, _ := r.out["error"].(string)
	if r.code != status || len(r.out) != 1 || !strings.Contains(msg, want) {
		t.Fatalf("%s = %d %v, want %d {\"error\": …%s…}", what, r.code, r.out, status, want)
	}
}

// TestControlRefusals: the refusals of the "Must show" list through the
// control API, as a script driving `walink sim` sees them: a retired QR
// (after companion_reg_refresh), an expired ref, a tampered pair-device-sign
// reply, then the 401 login of the device that was never linked; a wrong
// pair code and a code with no pending request.
func TestControlRefusals(t *testing.T) {
	clock := newFakeClock()
	s := startServer(t, nil, Config{Now: clock.Now})
	ctx := testCtx(t)
	phoneURL := s.ControlURL() + "/phones/" + testNumber
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	scan := func(qr string) httpResult {
		code, out, err := postJSON(ctx, phoneURL+"/scan", map[string]string{"qr": qr})
		return httpResult{code, out, err}
	}

	wantHTTPError(t, "first scan", scan(c.qr(refs[0])), http.StatusConflict, "companion_reg_refresh")
	w.ackNotification(w.expect("companion_reg_refresh", isTag("notification")))
	wantHTTPError(t, "scan of the retired QR", scan(c.qr(refs[0])), http.StatusGone, "retired")
	if _, err := rand.Read(c.advSecret[:]); err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * time.Second) // ref 1 is valid 60 s
	wantHTTPError(t, "scan of an expired ref", scan(c.qr(refs[0])), http.StatusGone, "expired")

	res := postAsync(ctx, phoneURL+"/scan", map[string]string{"qr": c.qr(refs[1])})
	c.answerPairSuccess(w, c.advSecret, true)
	wantHTTPError(t, "tampered pair-device-sign", <-res, http.StatusUnprocessableEntity, "signature")
	// Not linked: the server restarts the companion, whose login is refused.
	w.expect("515", func(n binxml.Node) bool { return n.Tag == "stream:error" && n.Attr("code") == "515" })
	w.close()
	if code, out := doJSON(t, "GET", phoneURL+"/devices", nil); code != 200 || len(out["devices"].([]any)) != 0 {
		t.Fatalf("devices after a refused signature = %d %v", code, out)
	}
	expectLoginFailure(t, c, s, "401")

	// Pair code: a wrong code (typed with a dash) is refused on both sides.
	c2 := newCompanion(t)
	w2 := c2.mustConnect(ctx, s, c2.registrationPayload())
	w2.pairDevice()
	code, _ := pairing.NewCode(rand.Reader)
	wrong, _ := pairing.NewCode(rand.Reader)
	for wrong == code {
		wrong, _ = pairing.NewCode(rand.Reader)
	}
	r, eph := c2.codeHello(t, w2, code, testNumber, "Chrome (Windows)")
	reg, ok := r.Child("link_code_companion_reg")
	if r.Attr("type") != "result" || !ok {
		t.Fatalf("companion_hello: %s", xmlString(r))
	}
	res = postAsync(ctx, phoneURL+"/link-code", map[string]string{"code": wrong[:4] + "-" + wrong[4:]})
	fin, _ := c2.codeFinish(t, w2, code, eph, childContent(reg, "link_code_pairing_ref"))
	if e, ok := fin.Child("error"); fin.Attr("type") != "error" || !ok || e.Attr("code") != "400" {
		t.Fatalf("companion_finish under a wrong code: %s", xmlString(fin))
	}
	wantHTTPError(t, "wrong code", <-res, http.StatusUnprocessableEntity, "wrong pair code")
	code2, out, err := postJSON(ctx, phoneURL+"/link-code", map[string]string{"code": code})
	wantHTTPError(t, "code after the flow ended", httpResult{code2, out, err}, http.StatusNotFound, "no pending")
}

// TestPairCodeForcedErrors: Scenario.PairCodeError refuses companion_hello
// with each of WhatsApp's rejections (CHANGES-2026 §4), code and text as
// WhatsApp sends them; off again, the same request gets its ref.
func TestPairCodeForcedErrors(t *testing.T) {
	c := newCompanion(t)
	ctx := context.Background()
	s, sess, rec := testSession(t, nil)
	if err := sess.begin(ctx, c.registrationPayload()); err != nil {
		t.Fatal(err)
	}
	rec.nodes(t)
	hello := helloNode(t, sess, func(*helloParts) {})
	for _, tc := range []struct {
		code    int
		text    string
		backoff bool
	}{
		{400, "bad-request", true},
		{403, "forbidden", false},
		{429, "rate-overlimit", true},
		{452, "feature-not-available", false},
		{500, "internal-server-error", false},
		{0, "", false},
	} {
		sc := s.Scenario()
		sc.PairCodeError = tc.code
		if err := s.UpdateScenario(sc); err != nil {
			t.Fatal(err)
		}
		if err := sess.handle(ctx, hello); err != nil {
			t.Fatal(err)
		}
		n := one(t, rec)
		if tc.code == 0 {
			if reg, ok := n.Child("link_code_companion_reg"); n.Attr("type") != "result" || !ok || len(childContent(reg, "link_code_pairing_ref")) == 0 {
				t.Fatalf("hello with the knob off: %s", xmlString(n))
			}
			continue
		}
		e, ok := n.Child("error")
		if n.Attr("type") != "error" || !ok || e.Attr("code") != fmt.Sprint(tc.code) || e.Attr("text") != tc.text || (e.Attr("backoff") != "") != tc.backoff {
			t.Errorf("pair_code_error %d: %s", tc.code, xmlString(n))
		}
	}
	sc := s.Scenario()
	sc.PairCodeError = 451
	if err := s.UpdateScenario(sc); !errors.Is(err, ErrBadScenario) {
		t.Fatalf("pair_code_error 451: %v", err)
	}
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	sc = DefaultScenario()
	sc.RegisterFlags(fs)
	if err := fs.Parse([]string{"--pair-code-error", "452"}); err != nil || sc.PairCodeError != 452 || sc.Validate() != nil {
		t.Fatalf("--pair-code-error 452: %v, %+v", err, sc)
	}
}

// TestUnknownDictionaryVersion: a header whose 4th byte names no known
// token dictionary (only v2 and v3 exist) is refused before the handshake
// goes on: the connection is closed without a server hello.
func TestUnknownDictionaryVersion(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	c.header = [4]byte{'W', 'A', 6, 4}
	if w, err := c.connect(ctx, s, c.registrationPayload()); err == nil {
		w.close()
		t.Fatal("handshake under header WA 06 04 succeeded")
	}
	if _, err := s.AwaitNode(ctx, func(e Event) bool {
		return strings.HasPrefix(e.Note, "handshake failed") && strings.Contains(e.Note, "bad connection header")
	}); err != nil {
		t.Fatal(err)
	}
}

// helloParts are the pieces of a companion_hello a test may spoil.
type helloParts struct {
	jid                 jid.JID
	wrapped, authKey    []byte
	platformID, display string
}

// helloNode builds a well-formed companion_hello for sess, then lets
// spoil change a part.
func helloNode(t *testing.T, sess *session, spoil func(*helloParts)) binxml.Node {
	t.Helper()
	p := helloParts{
		jid:        jid.New(testNumber, jid.DefaultUserServer),
		wrapped:    make([]byte, pairing.WrappedKeySize),
		authKey:    sess.static.Bytes(),
		platformID: "1",
		display:    "Chrome (Linux)",
	}
	if _, err := rand.Read(p.wrapped); err != nil {
		t.Fatal(err)
	}
	spoil(&p)
	return iqNode("h", "set", "md", binxml.Node{Tag: "link_code_companion_reg", Attrs: []binxml.Attr{
		binxml.AJ("jid", p.jid), binxml.A("stage", "companion_hello"), binxml.A("should_show_push_notification", "true"),
	}, Children: []binxml.Node{
		bytesNode("link_code_pairing_wrapped_companion_ephemeral_pub", p.wrapped),
		bytesNode("companion_server_auth_key_pub", p.authKey),
		bytesNode("companion_platform_id", []byte(p.platformID)),
		bytesNode("companion_platform_display", []byte(p.display)),
		bytesNode("link_code_pairing_nonce", []byte{0}),
	}})
}

// TestCompanionHelloValidation: the parts of a companion_hello WhatsApp is
// known to refuse get 400 bad-request (PROTOCOL.md §14.3, §14.6,
// CHANGES-2026 §4) and no ref; the rest is accepted with a "lenient:" note
// in the node log (leniency audit in doc.go).
func TestCompanionHelloValidation(t *testing.T) {
	c := newCompanion(t)
	ctx := context.Background()
	s, sess, rec := testSession(t, nil)
	if err := sess.begin(ctx, c.registrationPayload()); err != nil {
		t.Fatal(err)
	}
	rec.nodes(t)
	for _, tc := range []struct {
		name  string
		spoil func(*helloParts)
	}{
		{"platform id 0 (unknown)", func(p *helloParts) { p.platformID = "0" }},
		{"platform id 48 (Baileys' form of 0)", func(p *helloParts) { p.platformID = "48" }},
		{"display without OS", func(p *helloParts) { p.display = "Chrome" }},
		{"display with unknown OS", func(p *helloParts) { p.display = "Chrome (Plan 9)" }},
		{"number with a letter", func(p *helloParts) { p.jid.User = testNumber + "x" }},
		{"lid instead of a phone number", func(p *helloParts) { p.jid = jid.New(testNumber, jid.LIDServer) }},
	} {
		if err := sess.handle(ctx, helloNode(t, sess, tc.spoil)); err != nil {
			t.Fatal(err)
		}
		n := one(t, rec)
		if e, ok := n.Child("error"); n.Attr("type") != "error" || !ok || e.Attr("code") != "400" || e.Attr("text") != "bad-request" {
			t.Errorf("%s: %s", tc.name, xmlString(n))
		}
	}
	s.mu.Lock()
	pending := len(s.codes)
	s.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d pair-code flows after refused hellos", pending)
	}
	// The unspoiled request is accepted, so each refusal above was its part's.
	if err := sess.handle(ctx, helloNode(t, sess, func(*helloParts) {})); err != nil {
		t.Fatal(err)
	}
	if n := one(t, rec); n.Attr("type") != "result" {
		t.Fatalf("well-formed hello: %s", xmlString(n))
	}
}

// TestCompanionHelloLenient: values no evidence shows WhatsApp refusing are
// answered with a ref and logged as a warning naming what was odd.
func TestCompanionHelloLenient(t *testing.T) {
	c := newCompanion(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, note, flowDisplay string
		spoil                   func(*helloParts)
	}{
		{"platform id x", `companion_platform_id "x" is no known client type`, "unknown web client: Chrome (Linux)", func(p *helloParts) { p.platformID = "x" }},
		{"no platform id", `companion_platform_id "" is no known client type`, "unknown web client: Chrome (Linux)", func(p *helloParts) { p.platformID = "" }},
		{"platform id 49 (Baileys 6.x)", `companion_platform_id "49" read as the character code of "1"`, "Chrome (Linux)", func(p *helloParts) { p.platformID = "49" }},
		{"platform id 99 (Baileys' form of c)", `read as the character code of "c"`, "Chrome (Linux)", func(p *helloParts) { p.platformID = "99" }},
		{"number with a leading 0", "not 7-15 digits without a leading 0", "Chrome (Linux)", func(p *helloParts) { p.jid.User = "0" + testNumber[1:] }},
		{"number of 6 digits", "not 7-15 digits without a leading 0", "Chrome (Linux)", func(p *helloParts) { p.jid.User = "155512" }},
		{"wrapped key of 79 bytes", "wrapped companion ephemeral of 79 bytes", "Chrome (Linux)", func(p *helloParts) { p.wrapped = p.wrapped[:79] }},
		{"auth key is not the noise key", "companion_server_auth_key_pub is not the connection's noise key", "Chrome (Linux)", func(p *helloParts) { p.authKey = c.identity.Public.Bytes() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sess, rec := testSession(t, nil)
			if err := sess.begin(ctx, c.registrationPayload()); err != nil {
				t.Fatal(err)
			}
			rec.nodes(t)
			var number string
			if err := sess.handle(ctx, helloNode(t, sess, func(p *helloParts) { tc.spoil(p); number = p.jid.User })); err != nil {
				t.Fatal(err)
			}
			if n := one(t, rec); n.Attr("type") != "result" {
				t.Fatalf("got %s", xmlString(n))
			}
			awaitLenient(t, s, tc.note)
			s.mu.Lock()
			f := s.codes[number]
			s.mu.Unlock()
			if f == nil || f.display != tc.flowDisplay {
				t.Fatalf("flow %+v, want display %q", f, tc.flowDisplay)
			}
		})
	}
}

// awaitLenient fails unless the node log has a "lenient:" note containing
// want.
func awaitLenient(t *testing.T, s *Server, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.AwaitNode(ctx, func(e Event) bool {
		return e.Dir == DirInfo && strings.HasPrefix(e.Note, "lenient: ") && strings.Contains(e.Note, want)
	}); err != nil {
		t.Fatalf("no lenient note with %q: %v", want, err)
	}
}
