package watest

// The passkey step end to end over real loopback sockets: the scripted
// companion of companion_test.go drives walink's own client sub-flow
// (pairing/passkey.Flow) with the transport, and the server plays
// WhatsApp and the phone.

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/pairing/passkey"
)

// pkDriver runs a passkey.Flow on a scripted companion connection: it
// feeds the flow every node, sends what the flow says, and keeps the
// events and completions for the test to wait on.
type pkDriver struct {
	t      *testing.T
	c      *companion
	w      *wconn
	f      *passkey.Flow
	adv    [32]byte      // the adv secret the companion holds (QR's or code's)
	skew   time.Duration // added to the flow's clock
	events []passkey.Event
	done   []passkey.Completion
	ps     *binxml.Node // a pair-success that arrived
}

func newPKDriver(t *testing.T, c *companion, w *wconn, adv [32]byte) *pkDriver {
	t.Helper()
	return &pkDriver{t: t, c: c, w: w, adv: adv, f: newFlow(t, c, w)}
}

func newFlow(t *testing.T, c *companion, w *wconn) *passkey.Flow {
	t.Helper()
	f, err := passkey.NewFlow(passkey.FlowConfig{
		Rand: rand.Reader, NewID: w.nextID, Noise: c.noise.Public, Identity: c.identity.Public,
		DeviceType: 1, // CHROME, as the registration payload says
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (d *pkDriver) now() time.Time { return time.Now().Add(d.skew) }

func (d *pkDriver) apply(out passkey.Output) {
	for _, n := range out.Send {
		d.w.send(n)
	}
	d.events = append(d.events, out.Events...)
	d.done = append(d.done, out.Done...)
}

// await pumps nodes into the flow until cond holds.
func (d *pkDriver) await(what string, cond func() bool) {
	d.t.Helper()
	limit := time.NewTimer(15 * time.Second)
	defer limit.Stop()
	for !cond() {
		var tick <-chan time.Time
		if dl := d.f.Deadline(); !dl.IsZero() {
			t := time.NewTimer(max(dl.Sub(d.now()), 0))
			defer t.Stop()
			tick = t.C
		}
		select {
		case n, ok := <-d.w.nodes:
			if !ok {
				d.t.Fatalf("waiting for %s: connection ended: %v", what, d.w.err)
			}
			if n.Tag == "notification" {
				d.w.ackNotification(n)
			}
			if n.Tag == "iq" && n.Attr("type") == "set" {
				if _, ok := n.Child("pair-success"); ok {
					d.ps = &n
					continue
				}
			}
			if out, ok := d.f.HandleNode(d.now(), n, d.adv); ok {
				d.apply(out)
			}
		case <-tick:
			d.apply(d.f.Tick(d.now()))
		case <-limit.C:
			d.t.Fatalf("waiting for %s: timeout (events %#v, completions %+v)", what, d.events, d.done)
		}
	}
}

func awaitEvent[T passkey.Event](d *pkDriver, from int) (T, int) {
	d.t.Helper()
	var got T
	found := -1
	var zero T
	d.await(typeName(zero), func() bool {
		for i := from; i < len(d.events); i++ {
			if v, ok := d.events[i].(T); ok {
				got, found = v, i
				return true
			}
		}
		return false
	})
	return got, found + 1
}

func typeName(e passkey.Event) string {
	switch e.(type) {
	case passkey.RequestEvent:
		return "RequestEvent"
	case passkey.ConfirmationEvent:
		return "ConfirmationEvent"
	}
	return "ErrorEvent"
}

// respond sends an assertion (JSON) with SendPasskeyResponse and returns
// its outcome.
func (d *pkDriver) respond(assertion []byte) error {
	d.t.Helper()
	a, err := passkey.ParseAssertion(assertion)
	if err != nil {
		d.t.Fatal(err)
	}
	out, err := d.f.SendResponse(d.now(), a)
	if err != nil {
		d.t.Fatalf("SendResponse: %v", err)
	}
	d.done = nil
	d.apply(out)
	d.await("the prologue's reply", func() bool { return len(d.done) > 0 })
	last := d.done[0]
	d.done = nil
	if last.Call != passkey.CallResponse {
		d.t.Fatalf("completion %+v", last)
	}
	return last.Err
}

// confirm confirms the code (ConfirmPasskey) and waits for the result.
func (d *pkDriver) confirm() {
	d.t.Helper()
	out, err := d.f.Confirm(d.now())
	if err != nil {
		d.t.Fatalf("Confirm: %v", err)
	}
	d.apply(out)
	d.await("the encrypted pairing request's reply", func() bool { return len(d.done) > 0 })
	if c := d.done[0]; c.Call != passkey.CallConfirm || c.Err != nil {
		d.t.Fatalf("confirm = %+v", c)
	}
	d.done = nil
}

// finish answers pair-success with the flow's new adv secret, as the
// client must, and expects 515. It also checks that the QR's (or code's)
// secret no longer verifies it.
func (d *pkDriver) finish() {
	d.t.Helper()
	d.await("pair-success", func() bool { return d.ps != nil })
	ps, _ := d.ps.Child("pair-success")
	di, _ := ps.Child("device-identity")
	if _, err := pairing.VerifyPairSuccess(rand.Reader, d.adv, d.c.identity, di.Content); !errors.Is(err, pairing.ErrHMACMismatch) {
		d.t.Fatalf("pair-success with the shown adv secret: %v, want an HMAC mismatch", err)
	}
	adv, ok := d.f.AdvSecret()
	if !ok {
		d.t.Fatal("no new adv secret")
	}
	v, err := pairing.VerifyPairSuccess(rand.Reader, adv, d.c.identity, di.Content)
	if err != nil {
		d.t.Fatalf("pair-success with the new adv secret: %v", err)
	}
	dev, _ := ps.Child("device")
	d.c.id, _ = dev.AttrJID("jid")
	d.c.lid, _ = dev.AttrJID("lid")
	d.w.send(binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", d.ps.Attr("id")), binxml.AJ("to", jid.ServerJID), binxml.A("type", "result")},
		Children: []binxml.Node{{Tag: "pair-device-sign", Children: []binxml.Node{{
			Tag: "device-identity", Attrs: []binxml.Attr{binxml.A("key-index", v.Identity.KeyIndexAttr())}, Content: v.Reply,
		}}}}})
	d.ps = nil
	d.f.Finish()
	d.w.expect("515", func(n binxml.Node) bool { return n.Tag == "stream:error" && n.Attr("code") == "515" })
}

// qrStep connects a companion, scans its QR (through
// companion_reg_refresh) and waits for the passkey request.
func qrStep(ctx context.Context, t *testing.T, s *Server) (*pkDriver, <-chan linkResult, passkey.RequestEvent) {
	t.Helper()
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	phone := s.Phone(testNumber)
	if _, err := phone.ScanQR(ctx, c.qr(refs[0])); !errors.Is(err, ErrRescan) {
		t.Fatalf("first scan: %v", err)
	}
	w.ackNotification(w.expect("companion_reg_refresh", isTag("notification")))
	if _, err := rand.Read(c.advSecret[:]); err != nil {
		t.Fatal(err)
	}
	res := scanAsync(ctx, phone, c.qr(refs[0]))
	d := newPKDriver(t, c, w, c.advSecret)
	req, _ := awaitEvent[passkey.RequestEvent](d, 0)
	return d, res, req
}

func stepOf(t *testing.T, s *Server, d *pkDriver) *passkeyStep {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess, st := range s.pk.steps {
		if sess.static.Equal(d.c.noise.Public) {
			return st
		}
	}
	t.Fatal("no passkey step for the companion")
	return nil
}

// logged waits for a node-log note containing want.
func logged(ctx context.Context, t *testing.T, s *Server, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.AwaitNode(ctx, func(e Event) bool { return e.Dir == DirInfo && strings.Contains(e.Note, want) }); err != nil {
		t.Fatalf("no node-log line with %q", want)
	}
}

func TestPasskeyAfterQR(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyQR }, Config{})
	ctx := testCtx(t)
	d, res, req := qrStep(ctx, t, s)
	o := req.Options
	cred := s.Phone(testNumber).Passkey()
	if o.RPID() != "whatsapp.com" || o.UserVerification() != "required" || len(o.Challenge()) != 32 || o.Timeout() != 600*time.Second {
		t.Fatalf("options %s", o.JSON())
	}
	if a := o.AllowCredentials(); len(a) != 1 || string(a[0].ID) != string(cred.CredentialID) || a[0].Type != "public-key" {
		t.Fatalf("allowCredentials %+v", a)
	}
	// The notification carried the options inline, from the server JID.
	ev, err := s.AwaitNode(ctx, func(e Event) bool { return e.Dir == DirOut && e.Node.Attr("type") == passkey.TypePrologueRequest })
	if err != nil || !ev.Node.Attrs[0].IsJID() {
		t.Fatalf("request notification: %v %v", ev.XML, err)
	}
	assertion, err := s.Phone(testNumber).Assert(o.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.respond(assertion); err != nil {
		t.Fatalf("prologue refused: %v", err)
	}
	logged(ctx, t, s, "passkey assertion verified (sign count 1, handoff proof verified)")
	conf, _ := awaitEvent[passkey.ConfirmationEvent](d, 0)
	st := stepOf(t, s, d)
	s.mu.Lock()
	phoneCode := st.code
	s.mu.Unlock()
	if conf.Code != phoneCode || !conf.SkipHandoffUX {
		t.Fatalf("companion code %s (skip %v), phone code %s", conf.Code, conf.SkipHandoffUX, phoneCode)
	}
	d.confirm()
	d.finish()
	r := <-res
	if r.err != nil || r.jid != d.c.id {
		t.Fatalf("scan = %v, %v; companion has %s", r.jid, r.err, d.c.id)
	}
	if p := s.Phone(testNumber).Passkey(); p.SignCount != 1 {
		t.Fatalf("sign count %d", p.SignCount)
	}
	d.w.close()
	d.c.login(ctx, s).close() // linked: the login succeeds
}

func TestPasskeyAfterCodeOverHTTP(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyCode; sc.PasskeyConfirm = PasskeyConfirmManual }, Config{})
	ctx := testCtx(t)
	base := s.ControlURL() + "/phones/" + testNumber
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	w.pairDevice()
	code, err := pairing.NewCode(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, eph := c.codeHello(t, w, code, testNumber, "Chrome (Linux)")
	reg, _ := r.Child("link_code_companion_reg")
	ref := childContent(reg, "link_code_pairing_ref")
	linked := postAsync(ctx, base+"/link-code", map[string]string{"code": code})
	fin, adv := c.codeFinish(t, w, code, eph, ref)
	if fin.Attr("type") != "result" {
		t.Fatalf("companion_finish: %s", xmlString(fin))
	}
	d := newPKDriver(t, c, w, adv)
	req, _ := awaitEvent[passkey.RequestEvent](d, 0)

	// The user's authenticator, through the control API.
	status, out, err := postJSON(ctx, base+"/passkey/assert", map[string]json.RawMessage{"options": req.Options.JSON()})
	if err != nil || status != 200 {
		t.Fatalf("assert = %d %v %v", status, out, err)
	}
	assertion, _ := json.Marshal(out["assertion"])
	if err := d.respond(assertion); err != nil {
		t.Fatalf("prologue refused: %v", err)
	}
	conf, _ := awaitEvent[passkey.ConfirmationEvent](d, 0)
	if !conf.SkipHandoffUX {
		t.Fatal("a proof keyed by the pair code's adv secret was not sent")
	}
	// The phone does not confirm by itself in manual mode, proof or not.
	d.confirm()
	logged(ctx, t, s, "waiting for the code to be confirmed on the phone")
	confirmed := postAsync(ctx, base+"/passkey/confirm", map[string]string{"code": conf.Code})
	d.finish()
	cr := <-confirmed
	if cr.err != nil || cr.code != 200 || cr.out["device"] != d.c.id.String() {
		t.Fatalf("confirm = %d %v %v", cr.code, cr.out, cr.err)
	}
	lr := <-linked
	if lr.err != nil || lr.code != 200 || lr.out["device"] != d.c.id.String() {
		t.Fatalf("link-code = %d %v %v", lr.code, lr.out, lr.err)
	}

	// GET /phones/{phone}/passkey: the credential the options allowed.
	resp, err := http.Get(base + "/passkey")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		CredentialID string `json:"credential_id"`
		PublicKey    string `json:"public_key"`
		SignCount    uint32 `json:"sign_count"`
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := base64.RawURLEncoding.DecodeString(info.CredentialID)
	der, _ := base64.RawURLEncoding.DecodeString(info.PublicKey)
	pub, err := x509.ParsePKIXPublicKey(der)
	if _, isEC := pub.(*ecdsa.PublicKey); err != nil || !isEC || string(id) != string(req.Options.AllowCredentials()[0].ID) || info.SignCount != 1 {
		t.Fatalf("passkey info %+v (%v)", info, err)
	}
	d.w.close()
	d.c.login(ctx, s).close()
}

// TestPasskeyRefusals: each refusal gets an error reply and a node-log
// line that says why; where the protocol allows it, a new attempt on the
// same connection then links.
func TestPasskeyRefusals(t *testing.T) {
	type tc struct {
		name  string
		bad   func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte // a refused assertion
		why   string
		retry bool
	}
	phone := func(s *Server) *Phone { return s.Phone(testNumber) }
	assert := func(t *testing.T, s *Server, opts []byte, o assertOpts) []byte {
		t.Helper()
		a, err := phone(s).assert(opts, o)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	edit := func(opts []byte, f func(map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(opts, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	for _, c := range []tc{
		{"another challenge", func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte {
			return assert(t, s, edit(opts, func(m map[string]any) { m["challenge"] = "b3RoZXI" }), assertOpts{})
		}, "assertion is for another challenge", true},
		{"wrong rpId", func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte {
			return assert(t, s, edit(opts, func(m map[string]any) { m["rpId"] = "example.com" }), assertOpts{})
		}, "wrong rpId", true},
		{"user verification missing", func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte {
			return assert(t, s, opts, assertOpts{flags: flagUP})
		}, "UV flag is clear", true},
		{"bad signature", func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte {
			return assert(t, s, opts, assertOpts{otherKey: true})
		}, "signature over authenticatorData", true},
		{"not webauthn.get", func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte {
			return assert(t, s, opts, assertOpts{typ: "webauthn.create"})
		}, "is not webauthn.get", true},
		{"id is not rawId", func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte {
			// Only go-webauthn's standard checks catch this one: the
			// signature does not cover the id.
			var m map[string]any
			_ = json.Unmarshal(assert(t, s, opts, assertOpts{}), &m)
			m["id"] = "AAAA"
			b, _ := json.Marshal(m)
			return b
		}, "go-webauthn", true},
		{"stale handoff proof", func(t *testing.T, s *Server, d *pkDriver, opts []byte) []byte {
			// The companion keyed its proof with the QR's secret that
			// companion_reg_refresh retired: the flow was fed a stale secret.
			d.f = newFlow(t, d.c, d.w)
			var stale [32]byte
			copy(stale[:], "a retired adv secret, 32 bytes!!")
			out, _ := d.f.HandleNode(d.now(), passkey.PrologueRequest("x", "", opts), stale)
			d.apply(out)
			return assert(t, s, opts, assertOpts{})
		}, "stale handoff proof", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyBoth }, Config{})
			ctx := testCtx(t)
			d, res, req := qrStep(ctx, t, s)
			opts := req.Options.JSON()
			err := d.respond(c.bad(t, s, d, opts))
			var iqe *passkey.IQError
			if !errors.As(err, &iqe) || iqe.Code != 401 || iqe.Text != "not-authorized" || iqe.Stanza != passkey.TagPrologue {
				t.Fatalf("refused assertion: %v, want 401 not-authorized", err)
			}
			logged(ctx, t, s, "passkey <passkey_prologue> refused: ")
			logged(ctx, t, s, c.why)
			if n := len(phone(s).Devices()); n != 0 {
				t.Fatalf("%d devices after a refusal", n)
			}
			if !c.retry {
				return
			}
			if c.name == "stale handoff proof" {
				// The handoff key survives a refusal (PASSKEY.md §4.3) and
				// keys the retry too; past its 5 minutes the prologue goes
				// without a proof and the code is compared instead.
				if err := d.respond(assert(t, s, opts, assertOpts{})); !errors.As(err, &iqe) {
					t.Fatalf("retry within 5 min: %v, want the stale proof refused again", err)
				}
				d.skew = passkey.HandoffKeyLifetime
			}
			if err := d.respond(assert(t, s, opts, assertOpts{})); err != nil {
				t.Fatalf("retry: %v", err)
			}
			conf, _ := awaitEvent[passkey.ConfirmationEvent](d, 0)
			if conf.SkipHandoffUX == (c.name == "stale handoff proof") {
				t.Fatalf("SkipHandoffUX = %v", conf.SkipHandoffUX)
			}
			d.confirm()
			d.finish()
			if r := <-res; r.err != nil || r.jid != d.c.id {
				t.Fatalf("scan = %v, %v", r.jid, r.err)
			}
		})
	}
}

// TestPasskeyReplayAndCounter: an assertion that linked one companion is
// refused when replayed by another (its challenge is spent), and so is one
// whose sign counter did not grow; then a fresh one links.
func TestPasskeyReplayAndCounter(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyQR }, Config{})
	ctx := testCtx(t)
	p := s.Phone(testNumber)
	d, res, req := qrStep(ctx, t, s)
	first, err := p.Assert(req.Options.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.respond(first); err != nil {
		t.Fatal(err)
	}
	awaitEvent[passkey.ConfirmationEvent](d, 0)
	d.confirm()
	d.finish()
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	}
	d.w.close()

	d2, res2, req2 := qrStep(ctx, t, s)
	var iqe *passkey.IQError
	if err := d2.respond(first); !errors.As(err, &iqe) || iqe.Code != 401 {
		t.Fatalf("replay: %v", err)
	}
	logged(ctx, t, s, "replayed assertion: its challenge was already used")
	one := uint32(1)
	stale, err := p.assert(req2.Options.JSON(), assertOpts{count: &one})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.respond(stale); !errors.As(err, &iqe) {
		t.Fatalf("counter not grown: %v", err)
	}
	logged(ctx, t, s, "sign counter 1 did not grow past 1")
	fresh, _ := p.Assert(req2.Options.JSON())
	if err := d2.respond(fresh); err != nil {
		t.Fatal(err)
	}
	awaitEvent[passkey.ConfirmationEvent](d2, 0)
	d2.confirm()
	d2.finish()
	if r := <-res2; r.err != nil || len(p.Devices()) != 2 {
		t.Fatalf("second link: %v, devices %d", r.err, len(p.Devices()))
	}
}

// TestPasskeyWrongCodeOnPhone: with passkey_confirm manual, a wrong code
// typed on the phone is refused (409 through the control API, nothing
// linked) and the right one then links.
func TestPasskeyWrongCodeOnPhone(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyQR; sc.PasskeyConfirm = PasskeyConfirmManual }, Config{})
	ctx := testCtx(t)
	d, res, req := qrStep(ctx, t, s)
	a, _ := s.Phone(testNumber).Assert(req.Options.JSON())
	if err := d.respond(a); err != nil {
		t.Fatal(err)
	}
	conf, _ := awaitEvent[passkey.ConfirmationEvent](d, 0)
	wrong := "1111-1111"
	if conf.Code == wrong {
		wrong = "2222-2222"
	}
	base := s.ControlURL() + "/phones/" + testNumber
	wantHTTPError(t, "wrong code", <-postAsync(ctx, base+"/passkey/confirm", map[string]string{"code": wrong}), http.StatusConflict, "does not match")
	logged(ctx, t, s, "passkey code typed on the phone does not match")
	if n := len(s.Phone(testNumber).Devices()); n != 0 {
		t.Fatalf("%d devices after a wrong code", n)
	}
	confirmed := make(chan error, 1)
	go func() {
		_, err := s.Phone(testNumber).ConfirmPasskey(ctx, conf.Code)
		confirmed <- err
	}()
	d.confirm()
	d.finish()
	if err := <-confirmed; err != nil {
		t.Fatalf("right code: %v", err)
	}
	if r := <-res; r.err != nil || r.jid != d.c.id {
		t.Fatalf("scan = %v, %v", r.jid, r.err)
	}
}

// TestPasskeyTimeout: past the step's deadline the server ends the step
// (node log), /scan answers 504, and a late prologue gets 401.
func TestPasskeyTimeout(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyQR; sc.PasskeyTimeoutMS = 200 }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	base := s.ControlURL() + "/phones/" + testNumber
	wantHTTPError(t, "first scan", <-postAsync(ctx, base+"/scan", map[string]string{"qr": c.qr(refs[0])}), http.StatusConflict, "companion_reg_refresh")
	w.ackNotification(w.expect("companion_reg_refresh", isTag("notification")))
	rand.Read(c.advSecret[:])
	scan := postAsync(ctx, base+"/scan", map[string]string{"qr": c.qr(refs[0])})
	d := newPKDriver(t, c, w, c.advSecret)
	req, _ := awaitEvent[passkey.RequestEvent](d, 0)
	if req.Options.Timeout() != 200*time.Millisecond {
		t.Fatalf("options timeout %v", req.Options.Timeout())
	}
	logged(ctx, t, s, "passkey step timed out")
	wantHTTPError(t, "scan", <-scan, http.StatusGatewayTimeout, "timed out")
	a, _ := s.Phone(testNumber).Assert(req.Options.JSON())
	var iqe *passkey.IQError
	if err := d.respond(a); !errors.As(err, &iqe) || iqe.Code != 401 {
		t.Fatalf("late prologue: %v", err)
	}
	logged(ctx, t, s, "the passkey step is over")
	if n := len(s.Phone(testNumber).Devices()); n != 0 {
		t.Fatalf("%d devices", n)
	}
}

// TestPasskeyOptionsFetch: the <passkey_request_options/> IQ returns the
// step's options verbatim; outside a step it is refused.
func TestPasskeyOptionsFetch(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyQR }, Config{})
	ctx := testCtx(t)
	d, _, req := qrStep(ctx, t, s)
	id := d.w.nextID()
	d.w.send(passkey.RequestOptionsIQ(id))
	r := d.w.reply(id)
	o, err := passkey.ParseRequestOptionsResult(r)
	if err != nil || string(o.JSON()) != string(req.Options.JSON()) {
		t.Fatalf("fetched %s, %v", o.JSON(), err)
	}
	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	w.pairDevice()
	id = w.nextID()
	w.send(passkey.RequestOptionsIQ(id))
	if err := passkey.ParseReply(w.reply(id), "x"); err == nil {
		t.Fatal("options outside a step")
	}
	logged(ctx, t, s, "no passkey step on this connection")
}

func TestPasskeyScenarioKnobs(t *testing.T) {
	sc := DefaultScenario()
	if sc.passkeyGated(testNumber, PasskeyQR) || sc.passkeyGated(testNumber, PasskeyCode) {
		t.Fatal("passkey on by default")
	}
	sc.Passkey = "sometimes"
	if err := sc.Validate(); !errors.Is(err, ErrBadScenario) {
		t.Fatal(err)
	}
	s := startServer(t, nil, Config{})
	if err := s.Phone(testNumber).SetPasskey(PasskeyCode); err != nil {
		t.Fatal(err)
	}
	got := s.Scenario()
	if !got.passkeyGated(testNumber, PasskeyCode) || got.passkeyGated(testNumber, PasskeyQR) || got.passkeyGated("15550000000", PasskeyCode) {
		t.Fatalf("per-phone knob %+v", got.PasskeyPhones)
	}
}

// TestPasskeyOptionsForms: with the options left out of the notification,
// or garbled, the flow fetches them with the IQ and links.
func TestPasskeyOptionsForms(t *testing.T) {
	for _, form := range []string{PasskeyOptionsFetch, PasskeyOptionsGarbled} {
		t.Run(form, func(t *testing.T) {
			s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyQR; sc.PasskeyOptions = form }, Config{})
			ctx := testCtx(t)
			d, res, req := qrStep(ctx, t, s)
			if _, err := s.AwaitNode(ctx, func(e Event) bool {
				c, _ := firstChild(e.Node)
				return e.Dir == DirIn && c.Tag == passkey.TagRequestOptions
			}); err != nil {
				t.Fatal("options not fetched")
			}
			a, _ := s.Phone(testNumber).Assert(req.Options.JSON())
			if err := d.respond(a); err != nil {
				t.Fatal(err)
			}
			awaitEvent[passkey.ConfirmationEvent](d, 0)
			d.confirm()
			d.finish()
			if r := <-res; r.err != nil {
				t.Fatal(r.err)
			}
		})
	}
}

// TestPasskeyStepEnds: a companion that goes away ends the step (410
// through the control API's scan), and a confirmation with no step live is
// 404.
func TestPasskeyStepEnds(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.Passkey = PasskeyQR }, Config{})
	ctx := testCtx(t)
	base := s.ControlURL() + "/phones/" + testNumber
	wantHTTPError(t, "confirm", <-postAsync(ctx, base+"/passkey/confirm", map[string]string{"code": "1111-1111"}), http.StatusNotFound, "no passkey step")
	d, res, _ := qrStep(ctx, t, s)
	d.w.close()
	if r := <-res; !errors.Is(r.err, ErrDisconnected) {
		t.Fatalf("scan = %v", r.err)
	}
	logged(ctx, t, s, "passkey step: companion disconnected")
}
