package passkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/keys"
)

// Defaults of FlowConfig.
const (
	// DefaultReplyTimeout bounds the wait for each IQ reply (whatsmeow's
	// default IQ timeout).
	DefaultReplyTimeout = 75 * time.Second
	// DefaultStepTimeout is the step's lifetime when the options carry no
	// timeout (the options WhatsApp sends say 600000 ms).
	DefaultStepTimeout = 10 * time.Minute
	// DefaultStepGrace is added to the options' timeout: the user's
	// ceremony may use all of it, and the rest of the step follows.
	DefaultStepGrace = time.Minute
)

// FlowConfig configures a Flow. Zero durations mean the defaults.
type FlowConfig struct {
	// Rand draws the new adv secret, the ephemeral key, the nonce and the
	// IV. Required.
	Rand io.Reader
	// NewID returns the id of each IQ the flow sends (the session's id
	// generator, e.g. engine.IDs.Next). Required.
	NewID func() string
	// Noise and Identity are the companion's Noise static and Signal
	// identity public keys: fields 1 and 2 of the pairing request. The
	// phone checks them against the registration.
	Noise, Identity keys.PublicKey
	// DeviceType is the DeviceProps.PlatformType sent at registration; it
	// goes into the companion identity and the key's salt.
	DeviceType int32
	// ReplyTimeout bounds each IQ reply. Default DefaultReplyTimeout.
	ReplyTimeout time.Duration
	// StepTimeout is the step's lifetime from a request whose options have
	// no timeout. Default DefaultStepTimeout.
	StepTimeout time.Duration
	// StepGrace is added to the options' timeout. Default DefaultStepGrace.
	StepGrace time.Duration
	// AutoConfirm sends the encrypted pairing request as soon as the code
	// is known when a handoff proof went with the prologue (SkipHandoffUX),
	// as whatsmeow's QR channel does. The ConfirmationEvent is emitted all
	// the same (to show the code); a failure is an ErrorEvent.
	AutoConfirm bool
}

// Event is what the flow asks the session to emit, in order.
type Event interface{ isPasskeyEvent() }

// RequestEvent asks the application for a WebAuthn assertion for Options
// (root event PairPasskeyRequest). Deadline is when the step gives up.
type RequestEvent struct {
	Options  RequestOptions
	Deadline time.Time
}

// ConfirmationEvent carries the code the phone shows too (root event
// PairPasskeyConfirmation). SkipHandoffUX: the prologue carried a handoff
// proof, so the phone may skip its own comparison.
type ConfirmationEvent struct {
	Code          string // "XXXX-XXXX"
	SkipHandoffUX bool
}

// ErrorEvent reports a failure that no API call returns (root event
// PairPasskeyError). Continuation is false for the request (step 1) and
// true from the continuation on (PASSKEY.md §8).
type ErrorEvent struct {
	Err          error
	Continuation bool
}

func (RequestEvent) isPasskeyEvent()      {}
func (ConfirmationEvent) isPasskeyEvent() {}
func (ErrorEvent) isPasskeyEvent()        {}

// Call names an API call whose outcome arrives later.
type Call int

// The two API calls of the step.
const (
	CallResponse Call = iota + 1 // SendResponse: done at the prologue's reply
	CallConfirm                  // Confirm: done at the encrypted request's reply
)

func (c Call) String() string {
	switch c {
	case CallResponse:
		return "SendPasskeyResponse"
	case CallConfirm:
		return "ConfirmPasskey"
	}
	return "Call(?)"
}

// Completion is the outcome of an API call started earlier: nil Err is
// success. Exactly one Completion follows every call that returned no
// error (reply, timeout, or Stop).
type Completion struct {
	Call Call
	Err  error
}

// Output is what one input makes the flow do: nodes to send (in order),
// events to emit (in order, after the sends), API calls that ended, and,
// when AdvSecret is set, the adv secret that from now on keys pair-success
// (memory only: store it only once pair-success verifies with it).
type Output struct {
	Send      []binxml.Node
	Events    []Event
	Done      []Completion
	AdvSecret *[32]byte
	// Notes are diagnostics for the session's log (no secrets).
	Notes []string
}

func (o *Output) add(p Output) {
	o.Send = append(o.Send, p.Send...)
	o.Events = append(o.Events, p.Events...)
	o.Done = append(o.Done, p.Done...)
	o.Notes = append(o.Notes, p.Notes...)
	if p.AdvSecret != nil {
		o.AdvSecret = p.AdvSecret
	}
}

type iqKind int

const (
	kindOptions iqKind = iota + 1
	kindRef
	kindPrologue
	kindNonce
	kindEncrypted
)

var kindStanza = map[iqKind]string{
	kindOptions: TagRequestOptions, kindRef: TagRef, kindPrologue: TagPrologue,
	kindNonce: TagCompanionNonce, kindEncrypted: TagEncryptedPairingRequest,
}

type pendingIQ struct {
	kind     iqKind
	deadline time.Time
	auto     bool     // kindEncrypted sent by AutoConfirm
	fetchAdv [32]byte // kindOptions: the adv secret held when the request came
}

// linking is the state of the last prologue (whatsmeow's "linking cache").
type linking struct {
	eph       keys.KeyPair
	nonce     [NonceSize]byte
	ref       string
	proofSent bool
	shared    []byte // after the continuation
	primary   PrimaryIdentity
	key       [32]byte
	haveKey   bool
}

// Flow is the companion's side of the passkey step on one registration
// connection: a pure state machine. See the package documentation for its
// contract. It is not safe for concurrent use: one owner (the session)
// calls it.
type Flow struct {
	cfg FlowConfig

	active   bool // a request began the step and it has not ended
	opts     RequestOptions
	deadline time.Time // of the step; zero when not active

	adv     [32]byte // the adv secret the flow drew at the last request
	haveAdv bool

	hk        [32]byte
	hkAt      time.Time
	hkLive    bool // not used and not dropped
	hkShowed  bool // derived from a secret the phone saw (not one drawn here)
	pending   map[string]pendingIQ
	respBusy  bool
	respEph   keys.KeyPair // for the prologue being built
	respNonce [NonceSize]byte
	respJSON  []byte
	respCred  []byte
	confBusy  bool
	link      *linking // of the last accepted prologue
	next      *linking // of the prologue waiting for its reply
	finishing bool     // the encrypted request was accepted: waiting for pair-success
}

// NewFlow returns an idle flow. Rand and NewID are required
// (ErrConfig otherwise).
func NewFlow(cfg FlowConfig) (*Flow, error) {
	if cfg.Rand == nil || cfg.NewID == nil {
		return nil, fmt.Errorf("%w: Rand and NewID are required", ErrConfig)
	}
	if cfg.ReplyTimeout <= 0 {
		cfg.ReplyTimeout = DefaultReplyTimeout
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = DefaultStepTimeout
	}
	if cfg.StepGrace <= 0 {
		cfg.StepGrace = DefaultStepGrace
	}
	return &Flow{cfg: cfg, pending: map[string]pendingIQ{}}, nil
}

// Active reports whether the step is live: from a passkey_prologue_request
// (including the fetch of its options) until Finish, Stop or a failure that
// ends it. While it is, the session stops QR rotation and keeps the
// connection.
func (f *Flow) Active() bool { return f.active || f.fetching() }

func (f *Flow) fetching() bool {
	for _, p := range f.pending {
		if p.kind == kindOptions {
			return true
		}
	}
	return false
}

// AdvSecret returns the adv secret drawn at the last request: once it is
// set, pair-success must verify with it and no other (PASSKEY.md §4.7),
// and it is what the session stores on success.
func (f *Flow) AdvSecret() ([32]byte, bool) { return f.adv, f.haveAdv }

// Options returns the options of the live request (zero when none).
func (f *Flow) Options() RequestOptions { return f.opts }

// Deadline returns the next instant at which Tick must be called: the
// earliest reply deadline or the step deadline; zero when nothing waits.
func (f *Flow) Deadline() time.Time {
	var d time.Time
	for _, p := range f.pending {
		if d.IsZero() || p.deadline.Before(d) {
			d = p.deadline
		}
	}
	if f.active && (d.IsZero() || f.deadline.Before(d)) {
		d = f.deadline
	}
	return d
}

// HandleNode offers an incoming node to the flow and reports whether it
// was the flow's: a passkey_prologue_request or crsc_continuation
// notification, or the reply to one of its IQs. The session acks
// notifications itself, as it does every notification. currentAdv is the
// adv secret the session holds now (the QR's, or the pair code's after
// primary_hello); it is read only by a request.
func (f *Flow) HandleNode(now time.Time, n binxml.Node, currentAdv [32]byte) (Output, bool) {
	switch {
	case n.Tag == "notification" && n.Attr("type") == TypePrologueRequest:
		return f.request(now, n, currentAdv), true
	case n.Tag == "notification" && n.Attr("type") == TypeContinuation:
		return f.continuation(now, n), true
	case n.Tag == "iq" && (n.Attr("type") == "result" || n.Attr("type") == "error"):
		p, ok := f.pending[n.Attr("id")]
		if !ok {
			return Output{}, false
		}
		delete(f.pending, n.Attr("id"))
		return f.reply(now, p, n), true
	}
	return Output{}, false
}

func (f *Flow) send(now time.Time, out *Output, n binxml.Node, p pendingIQ) {
	p.deadline = now.Add(f.cfg.ReplyTimeout)
	f.pending[n.Attr("id")] = p
	out.Send = append(out.Send, n)
}

func (f *Flow) request(now time.Time, n binxml.Node, currentAdv [32]byte) Output {
	opts, err := ParsePrologueRequest(n)
	if errors.Is(err, ErrNotFromServer) {
		return Output{Notes: []string{"passkey: ignoring " + TypePrologueRequest + " not from the server JID"}}
	}
	if err != nil {
		var out Output
		out.Notes = append(out.Notes, "passkey: options not usable in the notification, fetching them: "+err.Error())
		f.send(now, &out, RequestOptionsIQ(f.cfg.NewID()), pendingIQ{kind: kindOptions, fetchAdv: currentAdv})
		return out
	}
	return f.begin(now, opts, currentAdv)
}

// begin is step 1 (PASSKEY.md §4.1): handoff key from the adv secret held
// now, a new adv secret, then the request event.
func (f *Flow) begin(now time.Time, opts RequestOptions, currentAdv [32]byte) Output {
	held, showed := currentAdv, true
	if f.haveAdv {
		// A second request: the secret held now is the one drawn at the
		// first, which no QR or code ever carried.
		held, showed = f.adv, false
	}
	var next [32]byte
	if _, err := io.ReadFull(f.cfg.Rand, next[:]); err != nil {
		return Output{Events: []Event{ErrorEvent{Err: fmt.Errorf("passkey: drawing the new adv secret: %w", err)}}}
	}
	f.hk, f.hkAt, f.hkLive, f.hkShowed = HandoffKey(held), now, true, showed
	f.adv, f.haveAdv = next, true
	f.opts = opts
	f.active = true
	f.finishing = false
	t := opts.Timeout()
	if t <= 0 {
		t = f.cfg.StepTimeout
	}
	f.deadline = now.Add(t + f.cfg.StepGrace)
	adv := f.adv
	return Output{AdvSecret: &adv, Events: []Event{RequestEvent{Options: opts, Deadline: f.deadline}}}
}

// SendResponse starts SendPasskeyResponse: the ref IQ, then the prologue
// with the assertion. Its outcome is a Completion{CallResponse}.
func (f *Flow) SendResponse(now time.Time, a Assertion) (Output, error) {
	if !f.active {
		return Output{}, ErrNoRequest
	}
	if f.respBusy {
		return Output{}, fmt.Errorf("%w: %s", ErrInProgress, CallResponse)
	}
	if err := a.Valid(); err != nil {
		return Output{}, err
	}
	js, err := json.Marshal(a)
	if err != nil {
		return Output{}, fmt.Errorf("passkey: encoding the assertion: %w", err)
	}
	eph, err := keys.NewKeyPair(f.cfg.Rand)
	if err != nil {
		return Output{}, fmt.Errorf("passkey: ephemeral key: %w", err)
	}
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(f.cfg.Rand, nonce[:]); err != nil {
		return Output{}, fmt.Errorf("passkey: companion nonce: %w", err)
	}
	f.respBusy, f.respEph, f.respNonce, f.respJSON, f.respCred = true, eph, nonce, js, append([]byte(nil), a.RawID...)
	var out Output
	f.send(now, &out, RefIQ(f.cfg.NewID()), pendingIQ{kind: kindRef})
	return out, nil
}

func (f *Flow) reply(now time.Time, p pendingIQ, n binxml.Node) Output {
	switch p.kind {
	case kindOptions:
		opts, err := ParseRequestOptionsResult(n)
		if err != nil {
			return f.fetchFailed(err)
		}
		return f.begin(now, opts, p.fetchAdv)
	case kindRef:
		ref, err := ParseRefResult(n)
		if err != nil {
			return f.respDone(err)
		}
		return f.prologue(now, ref)
	case kindPrologue:
		if err := ParseReply(n, TagPrologue); err != nil {
			// A refused prologue leaves the accepted one's state (a
			// replayed assertion must not undo a step that went on); the
			// handoff key is kept for a retry.
			f.next = nil
			return f.respDone(err)
		}
		f.hkLive = false
		f.promote()
		return f.respDone(nil)
	case kindNonce:
		if err := ParseReply(n, TagCompanionNonce); err != nil {
			return Output{Events: []Event{ErrorEvent{Err: err, Continuation: true}}}
		}
		return f.confirmable(now)
	case kindEncrypted:
		err := ParseReply(n, TagEncryptedPairingRequest)
		if err == nil {
			f.link = nil
			f.finishing = true
		}
		return f.confDone(p.auto, err)
	}
	return Output{}
}

func (f *Flow) fetchFailed(err error) Output {
	return Output{Events: []Event{ErrorEvent{Err: fmt.Errorf("passkey: fetching request options: %w", err)}}}
}

func (f *Flow) respDone(err error) Output {
	f.respBusy = false
	f.respJSON, f.respCred = nil, nil
	return Output{Done: []Completion{{Call: CallResponse, Err: err}}}
}

func (f *Flow) confDone(auto bool, err error) Output {
	f.confBusy = false
	if auto {
		if err != nil {
			return Output{Events: []Event{ErrorEvent{Err: fmt.Errorf("passkey: automatic confirmation: %w", err), Continuation: true}}}
		}
		return Output{}
	}
	return Output{Done: []Completion{{Call: CallConfirm, Err: err}}}
}

// promote makes the prologue waiting for its reply the accepted one.
func (f *Flow) promote() {
	if f.next != nil {
		f.link, f.next = f.next, nil
	}
}

// prologue builds the companion identity, the commitment and the prologue
// (PASSKEY.md §7.2-7.4) and sends it, saving the linking state first.
func (f *Flow) prologue(now time.Time, ref string) Output {
	ident := CompanionIdentity{PublicKey: f.respEph.Public, DeviceType: f.cfg.DeviceType, Ref: ref}
	identBytes := ident.Marshal()
	payload := MarshalPrologue(identBytes, Commitment(identBytes, f.respNonce))
	st := PrologueStanza{CredentialID: f.respCred, Assertion: f.respJSON, Payload: payload}
	var out Output
	switch {
	case f.hkLive && f.hkShowed && now.Sub(f.hkAt) < HandoffKeyLifetime:
		proof := HandoffProof(f.hk, payload)
		st.Proof = proof[:]
	case f.hkLive && !f.hkShowed:
		// whatsmeow sends a proof here too, keyed by a secret the phone
		// never saw (PASSKEY.md §10); a strict phone refuses it, so the
		// user compares the code instead.
		out.Notes = append(out.Notes, "passkey: no handoff proof: the adv secret held at this request was never shown to the phone")
	}
	f.next = &linking{eph: f.respEph, nonce: f.respNonce, ref: ref, proofSent: st.Proof != nil}
	f.send(now, &out, PrologueIQ(f.cfg.NewID(), st), pendingIQ{kind: kindPrologue})
	return out
}

func (f *Flow) continuation(now time.Time, n binxml.Node) Output {
	p, err := ParseContinuation(n)
	if errors.Is(err, ErrNotFromServer) {
		return Output{Notes: []string{"passkey: ignoring " + TypeContinuation + " not from the server JID"}}
	}
	if err != nil {
		return Output{Events: []Event{ErrorEvent{Err: err, Continuation: true}}}
	}
	f.promote() // the server continues only after accepting the prologue
	if f.link == nil {
		return Output{Events: []Event{ErrorEvent{Err: ErrNoLinkingState, Continuation: true}}}
	}
	ss, err := SharedSecret(f.link.eph.Private, p.PublicKey)
	if err != nil {
		return Output{Events: []Event{ErrorEvent{Err: err, Continuation: true}}}
	}
	f.link.shared = ss
	f.link.haveKey = false
	f.link.primary = p
	var out Output
	f.send(now, &out, CompanionNonceIQ(f.cfg.NewID(), f.link.nonce), pendingIQ{kind: kindNonce})
	return out
}

// confirmable derives the key and the code once the phone has the nonce
// (PASSKEY.md §4.5, §7.5-7.7).
func (f *Flow) confirmable(now time.Time) Output {
	l := f.link
	if l == nil || l.shared == nil {
		return Output{Events: []Event{ErrorEvent{Err: ErrNoLinkingState, Continuation: true}}}
	}
	l.key = EncryptionKey(l.shared, f.cfg.DeviceType, l.ref)
	l.haveKey = true
	code := ConfirmationCode(l.nonce, l.primary.PublicKey.Array(), l.primary.Nonce)
	out := Output{Events: []Event{ConfirmationEvent{Code: code, SkipHandoffUX: l.proofSent}}}
	if f.cfg.AutoConfirm && l.proofSent && !f.confBusy {
		o, err := f.confirm(now, true)
		if err != nil {
			out.Events = append(out.Events, ErrorEvent{Err: fmt.Errorf("passkey: automatic confirmation: %w", err), Continuation: true})
		}
		out.add(o)
	}
	return out
}

// Confirm starts ConfirmPasskey: the pairing request with the new adv
// secret, sealed with the derived key. Its outcome is a
// Completion{CallConfirm}.
func (f *Flow) Confirm(now time.Time) (Output, error) {
	if !f.active {
		return Output{}, ErrNoRequest
	}
	if f.link == nil {
		return Output{}, ErrNoLinkingState
	}
	if !f.link.haveKey {
		return Output{}, ErrNotConfirmable
	}
	if f.confBusy {
		return Output{}, fmt.Errorf("%w: %s", ErrInProgress, CallConfirm)
	}
	return f.confirm(now, false)
}

func (f *Flow) confirm(now time.Time, auto bool) (Output, error) {
	var iv [IVSize]byte
	if _, err := io.ReadFull(f.cfg.Rand, iv[:]); err != nil {
		return Output{}, fmt.Errorf("passkey: iv: %w", err)
	}
	sealed := SealPairingRequest(f.link.key, iv, PairingRequest{CompanionNoise: f.cfg.Noise, CompanionIdentity: f.cfg.Identity, AdvSecret: f.adv})
	f.confBusy = true
	var out Output
	f.send(now, &out, EncryptedPairingRequestIQ(f.cfg.NewID(), sealed), pendingIQ{kind: kindEncrypted, auto: auto})
	return out, nil
}

// Tick is the timer input: call it at Deadline (or later). Replies that
// are overdue fail their call with ErrTimeout; past the step deadline the
// step ends with ErrorEvent{ErrTimeout} and every call still waiting
// completes with ErrTimeout.
func (f *Flow) Tick(now time.Time) Output {
	var out Output
	for id, p := range f.pending {
		if now.Before(p.deadline) {
			continue
		}
		delete(f.pending, id)
		err := fmt.Errorf("%w: no reply to <%s> within %s", ErrTimeout, kindStanza[p.kind], f.cfg.ReplyTimeout)
		switch p.kind {
		case kindOptions:
			out.add(f.fetchFailed(err))
		case kindRef, kindPrologue:
			out.add(f.respDone(err))
		case kindNonce:
			out.Events = append(out.Events, ErrorEvent{Err: err, Continuation: true})
		case kindEncrypted:
			out.add(f.confDone(p.auto, err))
		}
	}
	if f.active && !now.Before(f.deadline) {
		cont := f.link != nil || f.finishing
		out.add(f.stop(fmt.Errorf("%w: the passkey step passed its deadline", ErrTimeout)))
		out.Events = append(out.Events, ErrorEvent{Err: fmt.Errorf("%w: the passkey step passed its deadline", ErrTimeout), Continuation: cont})
	}
	return out
}

// Finish ends the step after pair-success verified with AdvSecret: the
// flow forgets its keys and goes idle.
func (f *Flow) Finish() { f.stop(nil) }

// Stop ends the step (the connection is closing): every call still
// waiting completes with err.
func (f *Flow) Stop(err error) Output { return f.stop(err) }

func (f *Flow) stop(err error) Output {
	var out Output
	if f.respBusy {
		out.add(f.respDone(err))
	}
	if f.confBusy {
		auto := false
		for _, p := range f.pending {
			auto = auto || (p.kind == kindEncrypted && p.auto)
		}
		if auto {
			f.confBusy = false
		} else {
			out.add(f.confDone(false, err))
		}
	}
	clear(f.pending)
	f.active, f.finishing, f.hkLive = false, false, false
	f.link, f.next, f.deadline, f.opts = nil, nil, time.Time{}, RequestOptions{}
	f.hk = [32]byte{}
	return out
}
