package passkey

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
)

// detRand is a deterministic randomness source for tests.
type detRand struct{ n uint64 }

func (d *detRand) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += 32 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], d.n)
		d.n++
		h := sha256.Sum256(b[:])
		copy(p[i:], h[:])
	}
	return len(p), nil
}

// testPrimary is the server and phone side written with the primary-role
// functions: it answers the flow's IQs and checks what it can.
type testPrimary struct {
	t          *testing.T
	shown      [32]byte // the adv secret the phone saw in the QR
	options    []byte
	refuse     map[string]int // child tag → error code for the next such IQ
	ids        int
	prologue   Prologue
	proofOK    bool
	proofSent  bool
	eph        keys.KeyPair
	nonce      [32]byte
	code       string
	key        [32]byte
	request    PairingRequest
	gotRequest bool
	noContinue bool // do not send crsc_continuation after the prologue
}

func (p *testPrimary) id() string { p.ids++; return "srv-" + strconv.Itoa(p.ids) }

func result(id string) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.AJ("from", jid.ServerJID), binxml.A("id", id), binxml.A("type", "result")}}
}

func iqErr(id string, code int) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.AJ("from", jid.ServerJID), binxml.A("id", id), binxml.A("type", "error")},
		Children: []binxml.Node{{Tag: "error", Attrs: []binxml.Attr{binxml.A("code", strconv.Itoa(code)), binxml.A("text", "refused")}}}}
}

// answer returns the server's stanzas for one companion IQ.
func (p *testPrimary) answer(n binxml.Node) []binxml.Node {
	p.t.Helper()
	if n.Tag != "iq" || n.Attr("xmlns") != "md" || len(n.Children) != 1 {
		p.t.Fatalf("flow sent %v", n)
	}
	if to, ok := n.AttrJID("to"); !ok || to != jid.ServerJID {
		p.t.Fatalf("iq to %v", n.Attrs)
	}
	id, tag := n.Attr("id"), n.Children[0].Tag
	if code := p.refuse[tag]; code != 0 {
		delete(p.refuse, tag)
		return []binxml.Node{iqErr(id, code)}
	}
	switch tag {
	case TagRequestOptions:
		return []binxml.Node{RequestOptionsResult(id, p.options)}
	case TagRef:
		return []binxml.Node{RefResult(id, "2@pkref-test")}
	case TagPrologue:
		st, err := ParsePrologueIQ(n)
		if err != nil {
			p.t.Fatal(err)
		}
		if p.prologue, err = ParsePrologue(st.Payload); err != nil {
			p.t.Fatal(err)
		}
		p.proofSent = st.Proof != nil
		p.proofOK = p.proofSent && VerifyHandoffProof(p.shown, st.Payload, st.Proof)
		if p.noContinue {
			return []binxml.Node{result(id)}
		}
		p.eph, _ = keys.NewKeyPair(&detRand{n: 900})
		(&detRand{n: 950}).Read(p.nonce[:])
		return []binxml.Node{result(id), Continuation(p.id(), "1700000000", PrimaryIdentity{PublicKey: p.eph.Public, Nonce: p.nonce})}
	case TagCompanionNonce:
		cn, err := ParseCompanionNonceIQ(n)
		if err != nil {
			p.t.Fatal(err)
		}
		if Commitment(p.prologue.IdentityBytes, cn) != p.prologue.Commitment {
			return []binxml.Node{iqErr(id, 400)}
		}
		p.code = ConfirmationCode(cn, p.eph.Public.Array(), p.nonce)
		ss, err := SharedSecret(p.eph.Private, p.prologue.Identity.PublicKey)
		if err != nil {
			p.t.Fatal(err)
		}
		p.key = EncryptionKey(ss, p.prologue.Identity.DeviceType, p.prologue.Identity.Ref)
		return []binxml.Node{result(id)}
	case TagEncryptedPairingRequest:
		b, err := ParseEncryptedPairingRequestIQ(n)
		if err != nil {
			p.t.Fatal(err)
		}
		if p.request, err = OpenPairingRequest(p.key, b); err != nil {
			p.t.Fatalf("phone cannot open the pairing request: %v", err)
		}
		p.gotRequest = true
		return []binxml.Node{result(id)}
	}
	p.t.Fatalf("unexpected iq child %s", tag)
	return nil
}

type harness struct {
	t      *testing.T
	f      *Flow
	p      *testPrimary
	now    time.Time
	adv    [32]byte // the session's current adv secret
	events []Event
	done   []Completion
	newAdv *[32]byte
}

var (
	noiseKey, _    = keys.NewKeyPair(&detRand{n: 100})
	identityKey, _ = keys.NewKeyPair(&detRand{n: 200})
)

func newHarness(t *testing.T, mut func(*FlowConfig)) *harness {
	ids := 0
	cfg := FlowConfig{
		Rand:  &detRand{n: 1},
		NewID: func() string { ids++; return "52.136-" + strconv.Itoa(ids) },
		Noise: noiseKey.Public, Identity: identityKey.Public, DeviceType: 1,
	}
	if mut != nil {
		mut(&cfg)
	}
	f, err := NewFlow(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, f: f, now: time.Unix(1_700_000_000, 0)}
	(&detRand{n: 300}).Read(h.adv[:])
	h.p = &testPrimary{t: t, shown: h.adv, refuse: map[string]int{}}
	h.p.options = NewRequestOptions([]byte("challenge-0123456789abcdef"), "whatsapp.com", 10*time.Minute,
		[]AllowedCredential{{ID: []byte{1, 2, 3}, Type: "public-key", Transports: []string{"internal", "hybrid"}}}, "required").JSON()
	return h
}

// run applies an output: the primary answers every node sent, and its
// stanzas go back into the flow, until nothing is left.
func (h *harness) run(out Output) {
	h.t.Helper()
	queue := []Output{out}
	for len(queue) > 0 {
		o := queue[0]
		queue = queue[1:]
		h.events = append(h.events, o.Events...)
		h.done = append(h.done, o.Done...)
		if o.AdvSecret != nil {
			h.newAdv = o.AdvSecret
		}
		for _, n := range o.Send {
			for _, r := range h.p.answer(n) {
				next, ok := h.f.HandleNode(h.now, r, h.adv)
				if !ok {
					h.t.Fatalf("flow did not take %v", r)
				}
				queue = append(queue, next)
			}
		}
	}
}

func (h *harness) node(n binxml.Node) bool {
	out, ok := h.f.HandleNode(h.now, n, h.adv)
	h.run(out)
	return ok
}

func (h *harness) requestNotification(options []byte) binxml.Node {
	return PrologueRequest("srv-100", "1700000000", options)
}

func (h *harness) respond() {
	h.t.Helper()
	out, err := h.f.SendResponse(h.now, testAssertion())
	if err != nil {
		h.t.Fatal(err)
	}
	h.run(out)
}

func (h *harness) lastEvent() Event {
	if len(h.events) == 0 {
		return nil
	}
	return h.events[len(h.events)-1]
}

func testAssertion() Assertion {
	return Assertion{ID: "AQID", RawID: []byte{1, 2, 3}, Type: "public-key", Response: AssertionResponse{
		ClientDataJSON: []byte(`{"type":"webauthn.get"}`), AuthenticatorData: make([]byte, 37), Signature: []byte{0x30, 0x44},
	}}
}

func TestFlowLinks(t *testing.T) {
	h := newHarness(t, nil)
	if !h.node(h.requestNotification(h.p.options)) {
		t.Fatal("request not taken")
	}
	req, ok := h.lastEvent().(RequestEvent)
	if !ok || req.Options.RPID() != "whatsapp.com" || string(req.Options.Challenge()) != "challenge-0123456789abcdef" {
		t.Fatalf("events = %#v", h.events)
	}
	if want := h.now.Add(10*time.Minute + DefaultStepGrace); !req.Deadline.Equal(want) || !h.f.Deadline().Equal(want) {
		t.Fatalf("deadline = %v / %v, want %v", req.Deadline, h.f.Deadline(), want)
	}
	if !h.f.Active() || h.newAdv == nil || *h.newAdv == h.adv {
		t.Fatalf("active %v, new adv %v", h.f.Active(), h.newAdv)
	}
	h.respond()
	if len(h.done) != 1 || h.done[0] != (Completion{Call: CallResponse}) {
		t.Fatalf("completions = %+v", h.done)
	}
	if !h.p.proofSent || !h.p.proofOK {
		t.Fatalf("proof sent %v, verifies %v", h.p.proofSent, h.p.proofOK)
	}
	if h.p.prologue.Identity.DeviceType != 1 || h.p.prologue.Identity.Ref != "2@pkref-test" {
		t.Fatalf("identity = %+v", h.p.prologue.Identity)
	}
	conf, ok := h.lastEvent().(ConfirmationEvent)
	if !ok || conf.Code != h.p.code || !conf.SkipHandoffUX {
		t.Fatalf("confirmation = %#v, phone code %s", h.lastEvent(), h.p.code)
	}
	out, err := h.f.Confirm(h.now)
	if err != nil {
		t.Fatal(err)
	}
	h.run(out)
	if len(h.done) != 2 || h.done[1] != (Completion{Call: CallConfirm}) || !h.p.gotRequest {
		t.Fatalf("completions = %+v", h.done)
	}
	adv, _ := h.f.AdvSecret()
	if h.p.request != (PairingRequest{CompanionNoise: noiseKey.Public, CompanionIdentity: identityKey.Public, AdvSecret: adv}) || adv != *h.newAdv {
		t.Fatalf("phone got %#v", h.p.request)
	}
	if _, err := h.f.Confirm(h.now); !errors.Is(err, ErrNoLinkingState) {
		t.Fatalf("second confirm: %v", err)
	}
	if !h.f.Active() {
		t.Fatal("step ended before pair-success")
	}
	h.f.Finish()
	if h.f.Active() || !h.f.Deadline().IsZero() {
		t.Fatal("active after Finish")
	}
}

func TestFlowFetchesOptions(t *testing.T) {
	for name, n := range map[string]binxml.Node{
		"no child":    PrologueRequest("srv-1", "", nil),
		"padded b64":  PrologueRequest("srv-1", "", []byte(`{"challenge":"YWJj="}`)),
		"not json":    PrologueRequest("srv-1", "", []byte(`{`)),
		"float":       PrologueRequest("srv-1", "", []byte(`{"challenge":"YWJj","timeout":1.5}`)),
		"std base64+": PrologueRequest("srv-1", "", []byte(`{"challenge":"a+b/"}`)),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.node(n)
			req, ok := h.lastEvent().(RequestEvent)
			if !ok || string(req.Options.JSON()) != string(h.p.options) {
				t.Fatalf("events = %#v", h.events)
			}
		})
	}
	t.Run("fetch refused", func(t *testing.T) {
		h := newHarness(t, nil)
		h.p.refuse[TagRequestOptions] = 404
		h.node(PrologueRequest("srv-1", "", nil))
		ev, ok := h.lastEvent().(ErrorEvent)
		var iqe *IQError
		if !ok || ev.Continuation || !errors.As(ev.Err, &iqe) || iqe.Code != 404 || !errors.Is(ev.Err, ErrRefused) {
			t.Fatalf("events = %#v", h.events)
		}
		if _, ok := h.f.AdvSecret(); ok || h.newAdv != nil || h.f.Active() {
			t.Fatal("a failed request changed the adv secret or began the step")
		}
	})
}

func TestFlowIgnoresStrangers(t *testing.T) {
	h := newHarness(t, nil)
	n := PrologueRequest("srv-1", "", h.p.options)
	n.Attrs[0] = binxml.A("from", "s.whatsapp.net") // a string, not a JID
	h.node(n)
	other := PrologueRequest("srv-1", "", h.p.options)
	other.Attrs[0] = binxml.AJ("from", jid.New("123", jid.DefaultUserServer))
	h.node(other)
	if len(h.events) != 0 || h.f.Active() {
		t.Fatalf("events = %#v", h.events)
	}
	if _, ok := h.f.HandleNode(h.now, result("nobody"), h.adv); ok {
		t.Fatal("took a reply to no IQ of its own")
	}
	if _, err := h.f.SendResponse(h.now, testAssertion()); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("response without request: %v", err)
	}
}

func TestFlowRetryAfterRefusal(t *testing.T) {
	h := newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	h.p.refuse[TagPrologue] = 401
	h.respond()
	var iqe *IQError
	if len(h.done) != 1 || !errors.As(h.done[0].Err, &iqe) || iqe.Code != 401 || iqe.Stanza != TagPrologue {
		t.Fatalf("completions = %+v", h.done)
	}
	// The handoff key survives a refusal: the retry still carries a proof.
	h.now = h.now.Add(time.Minute)
	h.respond()
	if h.done[1].Err != nil || !h.p.proofOK {
		t.Fatalf("retry: %+v, proof ok %v", h.done, h.p.proofOK)
	}
	// ...and is used once: a third prologue has none.
	h.respond()
	if h.p.proofSent {
		t.Fatal("handoff key used twice")
	}
	if c := h.lastEvent().(ConfirmationEvent); c.SkipHandoffUX {
		t.Fatal("SkipHandoffUX without a proof")
	}
}

func TestFlowHandoffKeyExpires(t *testing.T) {
	h := newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	h.now = h.now.Add(HandoffKeyLifetime)
	h.respond()
	if h.p.proofSent {
		t.Fatal("proof sent with a 5-minute-old handoff key")
	}
}

func TestFlowSecondRequest(t *testing.T) {
	h := newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	first := *h.newAdv
	h.node(h.requestNotification(h.p.options))
	if *h.newAdv == first {
		t.Fatal("second request kept the adv secret")
	}
	h.respond()
	if h.p.proofSent {
		t.Fatal("proof keyed by a secret the phone never saw")
	}
	if c, ok := h.lastEvent().(ConfirmationEvent); !ok || c.SkipHandoffUX {
		t.Fatalf("events = %#v", h.events)
	}
}

func TestFlowAutoConfirm(t *testing.T) {
	h := newHarness(t, func(c *FlowConfig) { c.AutoConfirm = true })
	h.node(h.requestNotification(h.p.options))
	h.respond()
	if !h.p.gotRequest {
		t.Fatal("not confirmed automatically with a proof")
	}
	h = newHarness(t, func(c *FlowConfig) { c.AutoConfirm = true })
	h.node(h.requestNotification(h.p.options))
	h.now = h.now.Add(HandoffKeyLifetime)
	h.respond()
	if h.p.gotRequest {
		t.Fatal("confirmed automatically without a proof")
	}
}

func TestFlowTimeouts(t *testing.T) {
	h := newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	out, err := h.f.SendResponse(h.now, testAssertion())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.f.SendResponse(h.now, testAssertion()); !errors.Is(err, ErrInProgress) {
		t.Fatalf("concurrent response: %v", err)
	}
	// The ref IQ goes out but its reply never comes.
	if len(out.Send) != 1 || out.Send[0].Children[0].Tag != TagRef {
		t.Fatalf("sent %v", out.Send)
	}
	if d := h.f.Deadline(); !d.Equal(h.now.Add(DefaultReplyTimeout)) {
		t.Fatalf("deadline %v", d)
	}
	h.now = h.now.Add(DefaultReplyTimeout)
	h.run(h.f.Tick(h.now))
	if len(h.done) != 1 || !errors.Is(h.done[0].Err, ErrTimeout) {
		t.Fatalf("completions = %+v", h.done)
	}
	// A reply after the timeout is not the flow's any more.
	if _, ok := h.f.HandleNode(h.now, RefResult(out.Send[0].Attr("id"), "2@x"), h.adv); ok {
		t.Fatal("late reply taken")
	}
	h.p.noContinue = true
	h.respond()
	h.now = h.f.Deadline()
	h.run(h.f.Tick(h.now))
	ev, ok := h.lastEvent().(ErrorEvent)
	if !ok || !errors.Is(ev.Err, ErrTimeout) || !ev.Continuation || h.f.Active() {
		t.Fatalf("events = %#v, active %v", h.events, h.f.Active())
	}
	if _, err := h.f.Confirm(h.now); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("confirm after the deadline: %v", err)
	}
}

func TestFlowContinuationErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	pub, _ := keys.NewKeyPair(&detRand{n: 5})
	h.node(Continuation("srv-9", "", PrimaryIdentity{PublicKey: pub.Public}))
	if ev, ok := h.lastEvent().(ErrorEvent); !ok || !ev.Continuation || !errors.Is(ev.Err, ErrNoLinkingState) {
		t.Fatalf("events = %#v", h.events)
	}
	if _, err := h.f.Confirm(h.now); !errors.Is(err, ErrNoLinkingState) {
		t.Fatalf("confirm: %v", err)
	}
	h.p.noContinue = true
	h.respond()
	if _, err := h.f.Confirm(h.now); !errors.Is(err, ErrNotConfirmable) {
		t.Fatalf("confirm before the continuation: %v", err)
	}
	h.node(Continuation("srv-10", "", PrimaryIdentity{})) // all-zero key: low order
	if ev, ok := h.lastEvent().(ErrorEvent); !ok || !ev.Continuation || !errors.Is(ev.Err, ErrInvalidKey) {
		t.Fatalf("events = %#v", h.events)
	}
	bad := Continuation("srv-11", "", PrimaryIdentity{PublicKey: pub.Public})
	bad.Children[0].Content = bad.Children[0].Content[:40]
	h.node(bad)
	if ev, ok := h.lastEvent().(ErrorEvent); !ok || !errors.Is(ev.Err, ErrMalformed) {
		t.Fatalf("events = %#v", h.events)
	}
	// The nonce IQ refused: an error event of the continuation.
	h.p.refuse[TagCompanionNonce] = 400
	h.node(Continuation("srv-12", "", PrimaryIdentity{PublicKey: pub.Public}))
	if ev, ok := h.lastEvent().(ErrorEvent); !ok || !ev.Continuation || !errors.Is(ev.Err, ErrRefused) {
		t.Fatalf("events = %#v", h.events)
	}
}

func TestFlowConfig(t *testing.T) {
	if _, err := NewFlow(FlowConfig{NewID: func() string { return "1" }}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no Rand: %v", err)
	}
	if _, err := NewFlow(FlowConfig{Rand: &detRand{}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no NewID: %v", err)
	}
}

func TestFlowStop(t *testing.T) {
	h := newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	if _, err := h.f.SendResponse(h.now, testAssertion()); err != nil {
		t.Fatal(err)
	}
	stopErr := errors.New("connection closed")
	out := h.f.Stop(stopErr)
	if len(out.Done) != 1 || out.Done[0].Err != stopErr || h.f.Active() {
		t.Fatalf("stop = %+v", out)
	}
	if _, err := h.f.SendResponse(h.now, Assertion{}); !errors.Is(err, ErrNoRequest) {
		t.Fatal(err)
	}
	h.node(h.requestNotification(h.p.options))
	if _, err := h.f.SendResponse(h.now, Assertion{RawID: []byte{1}}); !errors.Is(err, ErrInvalidAssertion) {
		t.Fatalf("invalid assertion: %v", err)
	}
}

// A prologue refused after one was accepted (the same assertion sent
// twice: WhatsApp refuses the replay) leaves the accepted step as it was:
// the code still confirms; and a step whose only prologue was refused
// times out as a request failure (Continuation false).
func TestFlowRefusedReplayKeepsAcceptedState(t *testing.T) {
	h := newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	h.respond()
	conf, ok := h.lastEvent().(ConfirmationEvent)
	if !ok {
		t.Fatalf("events = %#v", h.events)
	}
	accepted := h.p.prologue
	h.p.refuse[TagPrologue] = 401
	h.respond()
	var iqe *IQError
	if len(h.done) != 2 || !errors.As(h.done[1].Err, &iqe) || iqe.Code != 401 {
		t.Fatalf("completions = %+v", h.done)
	}
	h.p.prologue = accepted // the phone keeps the accepted prologue
	out, err := h.f.Confirm(h.now)
	if err != nil {
		t.Fatalf("confirm after a refused replay: %v", err)
	}
	h.run(out)
	if len(h.done) != 3 || h.done[2].Err != nil || !h.p.gotRequest || h.p.code != conf.Code {
		t.Fatalf("completions = %+v, phone got the request %v", h.done, h.p.gotRequest)
	}

	h = newHarness(t, nil)
	h.node(h.requestNotification(h.p.options))
	h.p.refuse[TagPrologue] = 401
	h.respond()
	h.now = h.f.Deadline()
	h.run(h.f.Tick(h.now))
	if ev, ok := h.lastEvent().(ErrorEvent); !ok || !errors.Is(ev.Err, ErrTimeout) || ev.Continuation {
		t.Fatalf("events = %#v", h.events)
	}
}
