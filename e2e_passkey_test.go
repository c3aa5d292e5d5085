package walink_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
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
		b, err := p.Assert(o.JSON())
		if err != nil {
			return passkey.Assertion{}, err
		}
		return passkey.ParseAssertion(b)
	}
}

// assertFor makes the phone's assertion for o (the manual path).
func assertFor(t *testing.T, p *watest.Phone, o []byte) passkey.Assertion {
	t.Helper()
	b, err := p.Assert(o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := passkey.ParseAssertion(b)
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

// scanAsync scans like scanQR (through the reg refresh) in the background:
// with a passkey step, ScanQR only returns once linking ended.
func scanAsync(t *testing.T, ctx context.Context, phone *watest.Phone, rec *recorder, from *int) <-chan scanResult {
	t.Helper()
	code := waitFor[walink.PairingQRCode](t, rec, from, 5*time.Second).Code
	if _, err := phone.ScanQR(ctx, code); !errors.Is(err, watest.ErrRescan) {
		t.Fatalf("first scan: %v", err)
	}
	code = waitFor[walink.PairingQRCode](t, rec, from, 5*time.Second).Code
	res := make(chan scanResult, 1)
	go func() {
		dev, err := phone.ScanQR(ctx, code)
		res <- scanResult{dev, err}
	}()
	return res
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

// After a QR scan, with Config.PasskeyAuthenticator and
// PasskeyAutoConfirm: the client answers by itself.
func TestE2EPasskeyQRAutomatic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmAuto))
	phone := srv.Phone(testPhone)
	st := memstore.New()
	cfg := clientConfig(t, srv)
	cfg.PasskeyAuthenticator = phoneAuthenticator(phone)
	cfg.PasskeyAutoConfirm = true
	cli, rec := newClient(t, st, cfg)
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	res := scanAsync(t, ctx, phone, rec, &from)
	req := waitFor[walink.PairPasskeyRequest](t, rec, &from, 5*time.Second)
	if req.Options.RPID() != "whatsapp.com" || len(req.Options.Challenge()) != 32 || req.Deadline.IsZero() {
		t.Fatalf("request %s deadline %v", req.Options.JSON(), req.Deadline)
	}
	qrAdv := storedAdv(t, ctx, st)
	conf := waitFor[walink.PairPasskeyConfirmation](t, rec, &from, 5*time.Second)
	if len(conf.Code) != 9 || conf.Code[4] != '-' || !conf.SkipHandoffUX {
		t.Fatalf("confirmation %+v", conf)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("scan: %v", r.err)
	}
	linkedAndStored(t, ctx, st, rec, &from, r.dev, qrAdv)
	eventOrder(t, rec)
	if phone.Passkey().SignCount != 1 {
		t.Fatalf("sign count %d", phone.Passkey().SignCount)
	}
}

// After companion_finish (pair code), by hand: SendPasskeyResponse and
// ConfirmPasskey, the phone's user typing the code.
func TestE2EPasskeyCodeManual(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, pkScenario(watest.PasskeyCode, watest.PasskeyConfirmManual))
	phone := srv.Phone(testPhone)
	st := memstore.New()
	cli, rec := newClient(t, st, clientConfig(t, srv))
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan scanResult, 1)
	go func() {
		dev, err := phone.EnterCode(ctx, code[:4]+"-"+code[4:])
		entered <- scanResult{dev, err}
	}()
	req := waitFor[walink.PairPasskeyRequest](t, rec, &from, 5*time.Second)
	qrAdv := storedAdv(t, ctx, st)
	// Early calls get their typed errors.
	if err := cli.ConfirmPasskey(ctx); !errors.Is(err, passkey.ErrNoLinkingState) {
		t.Fatalf("ConfirmPasskey before a response: %v", err)
	}
	if err := cli.SendPasskeyResponse(ctx, passkey.Assertion{}); !errors.Is(err, walink.ErrPasskeyInvalidAssertion) {
		t.Fatalf("empty assertion: %v", err)
	}
	// No new pair code while the step holds the pairing.
	if _, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone}); !errors.Is(err, walink.ErrPasskeyInProgress) && !errors.Is(err, walink.ErrCodeAlreadyOutstanding) {
		t.Fatalf("PairWithCode during the step: %v", err)
	}
	if err := cli.SendPasskeyResponse(ctx, assertFor(t, phone, req.Options.JSON())); err != nil {
		t.Fatalf("SendPasskeyResponse: %v", err)
	}
	conf := waitFor[walink.PairPasskeyConfirmation](t, rec, &from, 5*time.Second)
	confirmed := make(chan error, 1)
	go func() { confirmed <- cli.ConfirmPasskey(ctx) }()
	dev, err := phone.ConfirmPasskey(ctx, conf.Code)
	if err != nil {
		t.Fatalf("phone confirm: %v", err)
	}
	if err := <-confirmed; err != nil {
		t.Fatalf("ConfirmPasskey: %v", err)
	}
	if r := <-entered; r.err != nil || r.dev != dev {
		t.Fatalf("EnterCode = %v %v", r.dev, r.err)
	}
	linkedAndStored(t, ctx, st, rec, &from, dev, qrAdv)
	if err := cli.SendPasskeyResponse(ctx, assertFor(t, phone, req.Options.JSON())); !errors.Is(err, walink.ErrAlreadyPaired) || !errors.Is(err, walink.ErrPasskeyNoRequest) {
		t.Fatalf("SendPasskeyResponse after linking: %v", err)
	}
}

// After a QR scan, by hand; refusals on the phone's and the server's
// side, then a new attempt on the same connection links:
// an assertion for another challenge is refused (PairPasskeyError from the
// authenticator, 401 from SendPasskeyResponse), a wrong code typed on the
// phone links nothing; nothing is stored until the right code.
func TestE2EPasskeyRefusalsThenLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmManual))
	phone := srv.Phone(testPhone)
	st := memstore.New()
	cfg := clientConfig(t, srv)
	// The authenticator answers for another challenge: WhatsApp refuses.
	cfg.PasskeyAuthenticator = func(ctx context.Context, o passkey.RequestOptions) (passkey.Assertion, error) {
		b, err := phone.Assert(otherChallenge(t, o.JSON()))
		if err != nil {
			return passkey.Assertion{}, err
		}
		return passkey.ParseAssertion(b)
	}
	cli, rec := newClient(t, st, cfg)
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	res := scanAsync(t, ctx, phone, rec, &from)
	req := waitFor[walink.PairPasskeyRequest](t, rec, &from, 5*time.Second)
	qrAdv := storedAdv(t, ctx, st)
	pe := waitFor[walink.PairPasskeyError](t, rec, &from, 5*time.Second)
	var ie *passkey.IQError
	if !errors.Is(pe.Err, walink.ErrPasskeyRefused) || !errors.As(pe.Err, &ie) || ie.Code != 401 || pe.Continuation {
		t.Fatalf("PairPasskeyError %+v", pe)
	}
	storedUnpaired(t, ctx, st, qrAdv)
	// By hand, the same refusal is the call's error.
	err := cli.SendPasskeyResponse(ctx, assertFor(t, phone, otherChallenge(t, req.Options.JSON())))
	if !errors.Is(err, walink.ErrPasskeyRefused) || !errors.As(err, &ie) || ie.Code != 401 {
		t.Fatalf("refused assertion: %v", err)
	}
	// The right assertion on the same connection.
	if err := cli.SendPasskeyResponse(ctx, assertFor(t, phone, req.Options.JSON())); err != nil {
		t.Fatalf("SendPasskeyResponse: %v", err)
	}
	conf := waitFor[walink.PairPasskeyConfirmation](t, rec, &from, 5*time.Second)
	confirmed := make(chan error, 1)
	go func() { confirmed <- cli.ConfirmPasskey(ctx) }()
	wrong := "AAAA-AAAA"
	if conf.Code == wrong {
		wrong = "BBBB-BBBB"
	}
	if _, err := phone.ConfirmPasskey(ctx, wrong); !errors.Is(err, watest.ErrPasskeyCodeMismatch) {
		t.Fatalf("wrong code on the phone: %v", err)
	}
	storedUnpaired(t, ctx, st, qrAdv)
	dev, err := phone.ConfirmPasskey(ctx, conf.Code)
	if err != nil {
		t.Fatalf("right code: %v", err)
	}
	if err := <-confirmed; err != nil {
		t.Fatalf("ConfirmPasskey: %v", err)
	}
	if r := <-res; r.err != nil || r.dev != dev {
		t.Fatalf("scan = %v %v", r.dev, r.err)
	}
	linkedAndStored(t, ctx, st, rec, &from, dev, qrAdv)
}

// Nobody answers the request: the QR stops rotating and the connection is
// kept (past every QR ref's lifetime) until the step's deadline; then
// PairPasskeyError{ErrPasskeyTimeout}, the connection ends, nothing stored.
func TestE2EPasskeyTimeout(t *testing.T) {
	runSync(t, "timeout", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, cfg := startPipeServer(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmManual))
		phone := srv.Phone(testPhone)
		st := memstore.New()
		cli, rec := newClient(t, st, cfg)
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		res := scanAsync(t, ctx, phone, rec, &from)
		req := waitFor[walink.PairPasskeyRequest](t, rec, &from, 5*time.Second)
		qrAdv := storedAdv(t, ctx, st)
		start := time.Now()
		pe := waitFor[walink.PairPasskeyError](t, rec, &from, 30*time.Minute)
		if !errors.Is(pe.Err, walink.ErrPasskeyTimeout) {
			t.Fatalf("PairPasskeyError %+v", pe)
		}
		if waited := time.Since(start); waited < req.Options.Timeout() {
			t.Fatalf("gave up after %v, options say %v", waited, req.Options.Timeout())
		}
		waitFor[walink.Disconnected](t, rec, &from, 5*time.Second)
		if r := <-res; r.err == nil {
			t.Fatal("the phone linked after the timeout")
		}
		for _, e := range rec.all() {
			switch e.(type) {
			case walink.PairSuccess, walink.QRCodesExpired:
				t.Fatalf("%T during the step", e)
			}
		}
		n := 0
		for _, e := range rec.all() {
			if _, ok := e.(walink.PairingQRCode); ok {
				n++
			}
		}
		if n != 2 { // the first and the one re-rendered by the reg refresh
			t.Fatalf("%d QR codes shown", n)
		}
		storedUnpaired(t, ctx, st, qrAdv)
		cli.Disconnect()
	})
}

// After companion_finish the user takes minutes over the passkey: the
// pair code's own wait for pair-success (60 s) must not refresh the code
// or rotate the secret meanwhile, nor the QR refs end the connection; the
// late answer links.
func TestE2EPasskeyCodeSlowCeremony(t *testing.T) {
	runSync(t, "slow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, cfg := startPipeServer(t, pkScenario(watest.PasskeyCode, watest.PasskeyConfirmAuto))
		phone := srv.Phone(testPhone)
		st := memstore.New()
		cli, rec := newClient(t, st, cfg)
		from := 0
		if err := cli.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		code, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: testPhone})
		if err != nil {
			t.Fatal(err)
		}
		entered := make(chan scanResult, 1)
		go func() {
			dev, err := phone.EnterCode(ctx, code[:4]+"-"+code[4:])
			entered <- scanResult{dev, err}
		}()
		req := waitFor[walink.PairPasskeyRequest](t, rec, &from, 5*time.Second)
		qrAdv := storedAdv(t, ctx, st)
		quiet(4 * time.Minute) // past the code's 60 s and every QR ref
		for _, e := range rec.all()[from:] {
			t.Fatalf("%T during the ceremony", e)
		}
		storedUnpaired(t, ctx, st, qrAdv)
		if err := cli.SendPasskeyResponse(ctx, assertFor(t, phone, req.Options.JSON())); err != nil {
			t.Fatalf("SendPasskeyResponse: %v", err)
		}
		waitFor[walink.PairPasskeyConfirmation](t, rec, &from, 5*time.Second)
		if err := cli.ConfirmPasskey(ctx); err != nil {
			t.Fatalf("ConfirmPasskey: %v", err)
		}
		r := <-entered
		if r.err != nil {
			t.Fatalf("EnterCode: %v", r.err)
		}
		linkedAndStored(t, ctx, st, rec, &from, r.dev, qrAdv)
		cli.Disconnect()
	})
}

// After a QR scan, by hand, through the client: assertions WhatsApp
// refuses (a wrong rpId, user verification missing, a bad signature) are
// each SendPasskeyResponse's 401 ErrPasskeyRefused and store nothing; the
// right assertion on the same connection then links.
func TestE2EPasskeyClientRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := startServer(t, pkScenario(watest.PasskeyQR, watest.PasskeyConfirmAuto))
	phone := srv.Phone(testPhone)
	st := memstore.New()
	cli, rec := newClient(t, st, clientConfig(t, srv))
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	res := scanAsync(t, ctx, phone, rec, &from)
	req := waitFor[walink.PairPasskeyRequest](t, rec, &from, 5*time.Second)
	qrAdv := storedAdv(t, ctx, st)
	for name, o := range map[string]watest.AssertOptions{
		"wrong rpId":    {RPID: "evil.example"},
		"no UV":         {NoUV: true},
		"bad signature": {BadSignature: true},
	} {
		b, err := phone.AssertWith(req.Options.JSON(), o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, err := passkey.ParseAssertion(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = cli.SendPasskeyResponse(ctx, a)
		var ie *passkey.IQError
		if !errors.Is(err, walink.ErrPasskeyRefused) || !errors.As(err, &ie) || ie.Code != 401 {
			t.Fatalf("%s: SendPasskeyResponse = %v, want 401 ErrPasskeyRefused", name, err)
		}
		storedUnpaired(t, ctx, st, qrAdv)
	}
	if err := cli.SendPasskeyResponse(ctx, assertFor(t, phone, req.Options.JSON())); err != nil {
		t.Fatalf("SendPasskeyResponse: %v", err)
	}
	waitFor[walink.PairPasskeyConfirmation](t, rec, &from, 5*time.Second)
	if err := cli.ConfirmPasskey(ctx); err != nil {
		t.Fatalf("ConfirmPasskey: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("scan: %v", r.err)
	}
	linkedAndStored(t, ctx, st, rec, &from, r.dev, qrAdv)
}
