package walink_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/pairing/passkey"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

func pkScenario(mode, confirm string) *watest.Scenario {
	sc := watest.DefaultScenario()
	sc.Passkey, sc.PasskeyConfirm = mode, confirm
	return &sc
}

// phoneAuthenticator is Config.PasskeyAuthenticator backed by the virtual
// phone's credential (what the user's authenticator does for real).
func phoneAuthenticator(p *watest.Phone) walink.PasskeyAuthenticator {
	return func(ctx context.Context, o passkey.RequestOptions) (passkey.Assertion, error) {
		return phoneAssert(p, o.JSON(), watest.AssertOptions{})
	}
}

// phoneAssert is the phone's assertion for options, faulty as ao says.
func phoneAssert(p *watest.Phone, options []byte, ao watest.AssertOptions) (passkey.Assertion, error) {
	b, err := p.AssertWith(options, ao)
	if err != nil {
		return passkey.Assertion{}, err
	}
	return passkey.ParseAssertion(b)
}

// assertFor makes the phone's assertion for o (the manual path).
func assertFor(t *testing.T, p *watest.Phone, o []byte) passkey.Assertion {
	t.Helper()
	return assertWith(t, p, o, watest.AssertOptions{})
}

func assertWith(t *testing.T, p *watest.Phone, o []byte, ao watest.AssertOptions) passkey.Assertion {
	t.Helper()
	a, err := phoneAssert(p, o, ao)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// otherChallenge returns o with a fresh random challenge.
func otherChallenge(t *testing.T, o []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(o, &m); err != nil {
		t.Fatal(err)
	}
	var c [32]byte
	rand.Read(c[:])
	m["challenge"] = base64.RawURLEncoding.EncodeToString(c[:])
	b, _ := json.Marshal(m)
	return b
}

type scanResult struct {
	dev jid.JID
	err error
}

// storedUnpaired checks that the store holds no paired device and that the
// adv secret is still want: nothing of the step was written.
func storedUnpaired(t *testing.T, ctx context.Context, st store.Store, want [32]byte) {
	t.Helper()
	ds, err := st.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d devices stored", len(ds))
	}
	if ds[0].Paired() || ds[0].AdvSecret != want {
		t.Fatalf("stored device paired %v, adv secret changed %v", ds[0].Paired(), ds[0].AdvSecret != want)
	}
}

func storedAdv(t *testing.T, ctx context.Context, st store.Store) [32]byte {
	t.Helper()
	ds, err := st.Devices(ctx)
	if err != nil || len(ds) != 1 {
		t.Fatalf("devices %d: %v", len(ds), err)
	}
	return ds[0].AdvSecret
}

// linkedAndStored checks the end of a passkey link: PairSuccess for the
// phone's device, Connected, and the device stored with the step's new
// adv secret (not the QR's).
func linkedAndStored(t *testing.T, ctx context.Context, st store.Store, rec *recorder, from *int, dev jid.JID, qrAdv [32]byte) {
	t.Helper()
	ps := waitFor[walink.PairSuccess](t, rec, from, 10*time.Second)
	if ps.ID != dev {
		t.Fatalf("PairSuccess %v, phone linked %v", ps.ID, dev)
	}
	waitFor[walink.Connected](t, rec, from, 10*time.Second)
	d, err := st.DeviceByJID(ctx, ps.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Account) == 0 || d.Unconfirmed {
		t.Fatalf("stored %+v", d.ID)
	}
	if d.AdvSecret == qrAdv {
		t.Fatal("stored the retired adv secret, not the passkey step's")
	}
}

// eventOrder checks that the passkey events came between the QR or code
// and PairSuccess, in the step's order.
func eventOrder(t *testing.T, rec *recorder) {
	t.Helper()
	var seq []string
	for _, e := range rec.all() {
		switch e.(type) {
		case walink.PairPasskeyRequest:
			seq = append(seq, "request")
		case walink.PairPasskeyConfirmation:
			seq = append(seq, "confirmation")
		case walink.PairSuccess:
			seq = append(seq, "success")
		case walink.Connected:
			seq = append(seq, "connected")
		case walink.PairingQRCode:
			if len(seq) > 0 && seq[len(seq)-1] == "request" {
				t.Fatal("a QR code was shown during the passkey step")
			}
		}
	}
	want := []string{"request", "confirmation", "success", "connected"}
	if len(seq) != len(want) {
		t.Fatalf("events %v", seq)
	}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("events %v", seq)
		}
	}
}

// pkRig is one client of a passkey test with its store, events and the
// phone that links it.
type pkRig struct {
	ctx   context.Context
	srv   *watest.Server
	phone *watest.Phone
	st    store.Store
	cli   *walink.Client
	rec   *recorder
	from  int
	qr    []string // the QR codes scanned, in order
}

// newRig connects a client with a fresh store to srv (cfg from
// clientConfig or startPipeServer, changed by mut when set).
func newRig(t *testing.T, ctx context.Context, srv *watest.Server, cfg walink.Config, mut func(*walink.Config, *watest.Phone)) *pkRig {
	t.Helper()
	r := &pkRig{ctx: ctx, srv: srv, phone: srv.Phone(testPhone), st: memstore.New()}
	if mut != nil {
		mut(&cfg, r.phone)
	}
	r.cli, r.rec = newClient(t, r.st, cfg)
	if err := r.cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// scan scans like scanQR (through the reg refresh) in the background:
// with a passkey step, ScanQR only returns once linking ended.
func (r *pkRig) scan(t *testing.T) <-chan scanResult {
	t.Helper()
	code := waitFor[walink.PairingQRCode](t, r.rec, &r.from, 5*time.Second).Code
	if _, err := r.phone.ScanQR(r.ctx, code); !errors.Is(err, watest.ErrRescan) {
		t.Fatalf("first scan: %v", err)
	}
	r.qr = append(r.qr, code)
	code = waitFor[walink.PairingQRCode](t, r.rec, &r.from, 5*time.Second).Code
	r.qr = append(r.qr, code)
	return r.rescan(code)
}

// rescan has the phone scan code in the background.
func (r *pkRig) rescan(code string) <-chan scanResult {
	res := make(chan scanResult, 1)
	go func() {
		dev, err := r.phone.ScanQR(r.ctx, code)
		res <- scanResult{dev, err}
	}()
	return res
}

// request waits for the passkey request and returns it with the adv
// secret stored then (the QR's or the code's: the step stores nothing).
func (r *pkRig) request(t *testing.T) (walink.PairPasskeyRequest, [32]byte) {
	t.Helper()
	req := waitFor[walink.PairPasskeyRequest](t, r.rec, &r.from, 5*time.Second)
	return req, storedAdv(t, r.ctx, r.st)
}

// refused sends a, which WhatsApp must refuse with 401 (ErrPasskeyRefused,
// a *passkey.IQError) logging why; nothing may be stored.
func (r *pkRig) refused(t *testing.T, a passkey.Assertion, qrAdv [32]byte, why string) {
	t.Helper()
	err := r.cli.SendPasskeyResponse(r.ctx, a)
	var ie *passkey.IQError
	if !errors.Is(err, walink.ErrPasskeyRefused) || !errors.As(err, &ie) || ie.Code != 401 {
		t.Fatalf("SendPasskeyResponse = %v, want 401 ErrPasskeyRefused (%s)", err, why)
	}
	nodeLogged(t, r.srv, why)
	storedUnpaired(t, r.ctx, r.st, qrAdv)
}

// confirm waits for the confirmation, checks SkipHandoffUX, confirms by
// hand (the phone confirms by itself) and returns the code.
func (r *pkRig) confirm(t *testing.T, skipUX bool) string {
	t.Helper()
	conf := waitFor[walink.PairPasskeyConfirmation](t, r.rec, &r.from, 5*time.Second)
	if len(conf.Code) != 9 || conf.Code[4] != '-' || conf.SkipHandoffUX != skipUX {
		t.Fatalf("confirmation %+v, want SkipHandoffUX %v", conf, skipUX)
	}
	if err := r.cli.ConfirmPasskey(r.ctx); err != nil {
		t.Fatalf("ConfirmPasskey: %v", err)
	}
	return conf.Code
}

// linked waits for the phone's side (a scan or a typed code) and checks
// the client's end with linkedAndStored.
func (r *pkRig) linked(t *testing.T, res <-chan scanResult, qrAdv [32]byte) jid.JID {
	t.Helper()
	x := <-res
	if x.err != nil {
		t.Fatalf("phone: %v", x.err)
	}
	linkedAndStored(t, r.ctx, r.st, r.rec, &r.from, x.dev, qrAdv)
	return x.dev
}

// confirmAsync runs ConfirmPasskey in the background: with
// passkey_confirm manual it returns once the phone's user typed the code.
func (r *pkRig) confirmAsync() <-chan error {
	confirmed := make(chan error, 1)
	go func() { confirmed <- r.cli.ConfirmPasskey(r.ctx) }()
	return confirmed
}

// typeCode is the phone's user typing the right code while confirmed
// (confirmAsync) waits; both succeed and the phone's side (res) links the
// device the phone names.
func (r *pkRig) typeCode(t *testing.T, code string, confirmed <-chan error, res <-chan scanResult, qrAdv [32]byte) {
	t.Helper()
	dev, err := r.phone.ConfirmPasskey(r.ctx, code)
	if err != nil {
		t.Fatalf("the phone refused the right code: %v", err)
	}
	if err := <-confirmed; err != nil {
		t.Fatalf("ConfirmPasskey: %v", err)
	}
	if got := r.linked(t, res, qrAdv); got != dev {
		t.Fatalf("the phone's side linked %v, its confirmation %v", got, dev)
	}
}

// startRig starts a local WhatsApp with sc on loopback and connects a
// rig's client to it; the rig's context ends with the test (60 s at most).
func startRig(t *testing.T, sc *watest.Scenario, mut func(*walink.Config, *watest.Phone)) *pkRig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	srv := startServer(t, sc)
	return newRig(t, ctx, srv, clientConfig(t, srv), mut)
}

// startPipeRig is startRig over net.Pipe, for tests in a synctest
// bubble (runSync).
func startPipeRig(t *testing.T, sc *watest.Scenario) *pkRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, cfg := startPipeServer(t, sc)
	return newRig(t, ctx, srv, cfg, nil)
}

// respond answers with the phone's assertion for options; WhatsApp must
// accept it.
func (r *pkRig) respond(t *testing.T, options []byte) {
	t.Helper()
	if err := r.cli.SendPasskeyResponse(r.ctx, assertFor(t, r.phone, options)); err != nil {
		t.Fatalf("SendPasskeyResponse: %v", err)
	}
}

// nodeLogged checks that the local WhatsApp's node log says why.
func nodeLogged(t *testing.T, srv *watest.Server, why string) {
	t.Helper()
	for _, e := range srv.Events() {
		if e.Dir == watest.DirInfo && strings.Contains(e.Note, why) {
			return
		}
	}
	t.Fatalf("node log never says %q", why)
}

// After a QR scan, with Config.PasskeyAuthenticator and
// PasskeyAutoConfirm: the client answers by itself.
func TestE2EPasskeyQRAutomatic(t *testing.T) {
	r := startRig(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmAuto), func(cfg *walink.Config, p *watest.Phone) {
		cfg.PasskeyAuthenticator = phoneAuthenticator(p)
		cfg.PasskeyAutoConfirm = true
	})
	res := r.scan(t)
	req, qrAdv := r.request(t)
	if req.Options.RPID() != "whatsapp.com" || len(req.Options.Challenge()) != 32 || req.Deadline.IsZero() {
		t.Fatalf("request %s deadline %v", req.Options.JSON(), req.Deadline)
	}
	conf := waitFor[walink.PairPasskeyConfirmation](t, r.rec, &r.from, 5*time.Second)
	if len(conf.Code) != 9 || conf.Code[4] != '-' || !conf.SkipHandoffUX {
		t.Fatalf("confirmation %+v", conf)
	}
	r.linked(t, res, qrAdv)
	eventOrder(t, r.rec)
	if r.phone.Passkey().SignCount != 1 {
		t.Fatalf("sign count %d", r.phone.Passkey().SignCount)
	}
}

// codeStep starts a pair code that the phone types in the background.
func (r *pkRig) codeStep(t *testing.T) <-chan scanResult {
	t.Helper()
	code, err := r.cli.PairWithCode(r.ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan scanResult, 1)
	go func() {
		dev, err := r.phone.EnterCode(r.ctx, code[:4]+"-"+code[4:])
		entered <- scanResult{dev, err}
	}()
	return entered
}

// After companion_finish (pair code), by hand: SendPasskeyResponse and
// ConfirmPasskey, the phone's user typing the code.
func TestE2EPasskeyCodeManual(t *testing.T) {
	r := startRig(t, pkScenario(watest.PasskeyCode, watest.PasskeyConfirmManual), nil)
	entered := r.codeStep(t)
	req, qrAdv := r.request(t)
	// Early calls get their typed errors.
	if err := r.cli.ConfirmPasskey(r.ctx); !errors.Is(err, passkey.ErrNoLinkingState) {
		t.Fatalf("ConfirmPasskey before a response: %v", err)
	}
	if err := r.cli.SendPasskeyResponse(r.ctx, passkey.Assertion{}); !errors.Is(err, walink.ErrPasskeyInvalidAssertion) {
		t.Fatalf("empty assertion: %v", err)
	}
	// No new pair code while the step holds the pairing.
	if _, err := r.cli.PairWithCode(r.ctx, walink.PairCodeOptions{PhoneNumber: testPhone}); !errors.Is(err, walink.ErrPasskeyInProgress) && !errors.Is(err, walink.ErrCodeAlreadyOutstanding) {
		t.Fatalf("PairWithCode during the step: %v", err)
	}
	r.respond(t, req.Options.JSON())
	conf := waitFor[walink.PairPasskeyConfirmation](t, r.rec, &r.from, 5*time.Second)
	r.typeCode(t, conf.Code, r.confirmAsync(), entered, qrAdv)
	if err := r.cli.SendPasskeyResponse(r.ctx, assertFor(t, r.phone, req.Options.JSON())); !errors.Is(err, walink.ErrAlreadyPaired) || !errors.Is(err, walink.ErrPasskeyNoRequest) {
		t.Fatalf("SendPasskeyResponse after linking: %v", err)
	}
}

// After a QR scan, by hand; refusals on the phone's and the server's
// side, then a new attempt on the same connection links:
// an assertion for another challenge is refused (PairPasskeyError from the
// authenticator, 401 from SendPasskeyResponse), a wrong code typed on the
// phone links nothing; nothing is stored until the right code.
func TestE2EPasskeyRefusalsThenLink(t *testing.T) {
	r := startRig(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmManual), func(cfg *walink.Config, p *watest.Phone) {
		// The authenticator answers for another challenge: WhatsApp refuses.
		cfg.PasskeyAuthenticator = func(ctx context.Context, o passkey.RequestOptions) (passkey.Assertion, error) {
			return phoneAssert(p, otherChallenge(t, o.JSON()), watest.AssertOptions{})
		}
	})
	res := r.scan(t)
	req, qrAdv := r.request(t)
	pe := waitFor[walink.PairPasskeyError](t, r.rec, &r.from, 5*time.Second)
	var ie *passkey.IQError
	if !errors.Is(pe.Err, walink.ErrPasskeyRefused) || !errors.As(pe.Err, &ie) || ie.Code != 401 || pe.Continuation {
		t.Fatalf("PairPasskeyError %+v", pe)
	}
	storedUnpaired(t, r.ctx, r.st, qrAdv)
	// By hand, the same refusal is the call's error.
	r.refused(t, assertFor(t, r.phone, otherChallenge(t, req.Options.JSON())), qrAdv, "assertion is for another challenge")
	// The right assertion on the same connection.
	r.respond(t, req.Options.JSON())
	conf := waitFor[walink.PairPasskeyConfirmation](t, r.rec, &r.from, 5*time.Second)
	confirmed := r.confirmAsync()
	wrong := "AAAA-AAAA"
	if conf.Code == wrong {
		wrong = "BBBB-BBBB"
	}
	if _, err := r.phone.ConfirmPasskey(r.ctx, wrong); !errors.Is(err, watest.ErrPasskeyCodeMismatch) {
		t.Fatalf("wrong code on the phone: %v", err)
	}
	storedUnpaired(t, r.ctx, r.st, qrAdv)
	r.typeCode(t, conf.Code, confirmed, res, qrAdv)
}

// Nobody answers the request: the QR stops rotating and the connection is
// kept (past every QR ref's lifetime) until the step's deadline; then
// PairPasskeyError{ErrPasskeyTimeout}, the connection ends, nothing stored.
func TestE2EPasskeyTimeout(t *testing.T) {
	runSync(t, "timeout", func(t *testing.T) {
		r := startPipeRig(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmManual))
		res := r.scan(t)
		req, qrAdv := r.request(t)
		start := time.Now()
		pe := waitFor[walink.PairPasskeyError](t, r.rec, &r.from, 30*time.Minute)
		if !errors.Is(pe.Err, walink.ErrPasskeyTimeout) || pe.Continuation {
			t.Fatalf("PairPasskeyError %+v", pe)
		}
		if waited := time.Since(start); waited < req.Options.Timeout() {
			t.Fatalf("gave up after %v, options say %v", waited, req.Options.Timeout())
		}
		waitFor[walink.Disconnected](t, r.rec, &r.from, 5*time.Second)
		if x := <-res; x.err == nil {
			t.Fatal("the phone linked after the timeout")
		}
		n := 0
		for _, e := range r.rec.all() {
			switch e.(type) {
			case walink.PairSuccess, walink.QRCodesExpired:
				t.Fatalf("%T during the step", e)
			case walink.PairingQRCode:
				n++
			}
		}
		if n != 2 { // the first and the one re-rendered by the reg refresh
			t.Fatalf("%d QR codes shown", n)
		}
		storedUnpaired(t, r.ctx, r.st, qrAdv)
		r.cli.Disconnect()
	})
}

// After companion_finish the user takes minutes over the passkey: the
// pair code's own wait for pair-success (60 s) must not refresh the code
// or rotate the secret meanwhile, nor the QR refs end the connection; the
// late answer links.
func TestE2EPasskeyCodeSlowCeremony(t *testing.T) {
	runSync(t, "slow", func(t *testing.T) {
		r := startPipeRig(t, pkScenario(watest.PasskeyCode, watest.PasskeyConfirmAuto))
		entered := r.codeStep(t)
		req, qrAdv := r.request(t)
		quiet(4 * time.Minute) // past the code's 60 s and every QR ref
		for _, e := range r.rec.all()[r.from:] {
			t.Fatalf("%T during the ceremony", e)
		}
		storedUnpaired(t, r.ctx, r.st, qrAdv)
		r.respond(t, req.Options.JSON())
		r.confirm(t, true)
		r.linked(t, entered, qrAdv)
		r.cli.Disconnect()
	})
}

// After a QR scan, by hand, through the client: assertions WhatsApp
// refuses (a wrong rpId, user verification missing, a bad signature) are
// each SendPasskeyResponse's 401 ErrPasskeyRefused and store nothing; the
// right assertion on the same connection then links.
func TestE2EPasskeyClientRefusals(t *testing.T) {
	r := startRig(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmAuto), nil)
	res := r.scan(t)
	req, qrAdv := r.request(t)
	for _, c := range []struct {
		o   watest.AssertOptions
		why string
	}{
		{watest.AssertOptions{RPID: "evil.example"}, "wrong rpId"},
		{watest.AssertOptions{NoUV: true}, "UV flag is clear"},
		{watest.AssertOptions{BadSignature: true}, "signature over authenticatorData"},
	} {
		r.refused(t, assertWith(t, r.phone, req.Options.JSON(), c.o), qrAdv, c.why)
	}
	r.respond(t, req.Options.JSON())
	r.confirm(t, true)
	r.linked(t, res, qrAdv)
}

// A replayed assertion, through the client. The same assertion sent twice
// in one step: the second is refused (its challenge is spent) and leaves
// the accepted step as it was, so the code still links. A second device
// linking to the same account reusing that assertion is refused too, and
// so is an assertion for the new challenge whose sign counter did not grow
// (a cloned authenticator); then a fresh one links.
func TestE2EPasskeyReplayedAssertion(t *testing.T) {
	r := startRig(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmAuto), nil)
	res := r.scan(t)
	req, qrAdv := r.request(t)
	first := assertFor(t, r.phone, req.Options.JSON())
	if err := r.cli.SendPasskeyResponse(r.ctx, first); err != nil {
		t.Fatalf("SendPasskeyResponse: %v", err)
	}
	r.refused(t, first, qrAdv, "replayed assertion: its challenge was already used")
	r.confirm(t, true)
	r.linked(t, res, qrAdv)

	r2 := newRig(t, r.ctx, r.srv, clientConfig(t, r.srv), nil)
	res2 := r2.scan(t)
	req2, qrAdv2 := r2.request(t)
	r2.refused(t, first, qrAdv2, "replayed assertion: its challenge was already used")
	cloned := assertWith(t, r2.phone, req2.Options.JSON(), watest.AssertOptions{ReuseSignCount: true})
	r2.refused(t, cloned, qrAdv2, "sign counter 1 did not grow past 1")
	r2.respond(t, req2.Options.JSON())
	r2.confirm(t, true)
	r2.linked(t, res2, qrAdv2)
	if n := len(r2.phone.Devices()); n != 2 {
		t.Fatalf("%d devices linked", n)
	}
}

// A handoff proof keyed by a retired adv secret, through the client. The
// QR the reg refresh retired cannot start a step (the phone refuses it).
// When WhatsApp ends a step the user let pass and the phone scans again,
// the client gets a second request on the same connection while it holds
// the secret it drew at the first, which no QR carried: a proof keyed by
// it would be stale (the local WhatsApp refuses one, see watest's
// TestPasskeyRefusals), so the client sends none and the user compares the
// code; the step links with the newest secret.
func TestE2EPasskeyStaleHandoff(t *testing.T) {
	sc := pkScenario(watest.PasskeyQR, watest.PasskeyConfirmAuto)
	sc.PasskeyTimeoutMS = 1500
	r := startRig(t, sc, nil)
	res := r.scan(t)
	_, qrAdv := r.request(t)
	if _, err := r.phone.ScanQR(r.ctx, r.qr[0]); !errors.Is(err, watest.ErrStaleQR) {
		t.Fatalf("scan of the retired QR: %v", err)
	}
	if x := <-res; !errors.Is(x.err, watest.ErrPasskeyTimeout) {
		t.Fatalf("first step: %v", x.err)
	}
	storedUnpaired(t, r.ctx, r.st, qrAdv)
	res = r.rescan(r.qr[1])
	req, _ := r.request(t)
	r.respond(t, req.Options.JSON())
	nodeLogged(t, r.srv, "no handoff proof")
	r.confirm(t, false)
	r.linked(t, res, qrAdv)
}
