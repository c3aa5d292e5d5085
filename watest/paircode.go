package watest

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strconv"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

// codeFlow is one pair-code request (companion_hello) waiting for the phone
// to type the code. The server routes it by phone number.
type codeFlow struct {
	number   string
	sess     *session
	ref      string
	wrapped  []byte // companion's wrapped ephemeral (80 bytes)
	display  string // companion_platform_display
	created  time.Time
	entered  bool           // EnterCode is running
	finished chan finishMsg // the companion_finish stanza, to EnterCode
}

// finishMsg is a companion_finish with the id of its IQ.
type finishMsg struct {
	id  string
	reg binxml.Node
}

// rateWindow is the period of Scenario.PairCodeRateLimit.
const rateWindow = time.Hour

// companionHello serves stage 1 (PROTOCOL.md §14.3, CHANGES-2026 §4).
func (sess *session) companionHello(ctx context.Context, id string, reg binxml.Node) error {
	s := sess.srv
	refuse := func(code int, text, why string, extra ...binxml.Attr) error {
		s.info(sess.id, "companion_hello refused: "+why)
		return sess.send(ctx, iqError(id, code, text, extra...))
	}
	// The checks below are the leniency audit's rows for companion_hello
	// (package doc): refusals only where a client or the facts show
	// WhatsApp refusing; the rest is accepted and logged.
	target, ok := reg.AttrJID("jid")
	if !ok || target.Server != jid.DefaultUserServer || !allDigits(target.User) {
		// The code is routed to the phone by number (CHANGES-2026 §4).
		return refuse(400, "bad-request", "jid is not a phone number @s.whatsapp.net")
	}
	if !validNumber(target.User) {
		s.lenient(sess.id, "companion_hello for "+target.User+": not 7-15 digits without a leading 0 (clients check this, not the server)")
	}
	platformID, note, refused := clientType(string(childContent(reg, "companion_platform_id")))
	if refused {
		return refuse(400, "bad-request", "companion_platform_id 0 (UNKNOWN, refused per whatsapp-rust)")
	}
	if note != "" {
		s.lenient(sess.id, note)
	}
	display := string(childContent(reg, "companion_platform_display"))
	if err := pairing.ValidatePlatformDisplay(display); err != nil {
		// whatsmeow documents 400 for uncommon displays; whatsapp-rust
		// (from WA Web) the "Browser (OS)" rule (CHANGES-2026 §4).
		return refuse(400, "bad-request", err.Error())
	}
	if platformID == "" {
		display = unknownWebClient + ": " + display
	}
	wrapped := childContent(reg, "link_code_pairing_wrapped_companion_ephemeral_pub")
	if len(wrapped) != pairing.WrappedKeySize {
		s.lenient(sess.id, fmt.Sprintf("wrapped companion ephemeral of %d bytes, not %d: no code will open it", len(wrapped), pairing.WrappedKeySize))
	}
	if !bytesEqual(childContent(reg, "companion_server_auth_key_pub"), sess.static.Bytes()) {
		s.lenient(sess.id, "companion_server_auth_key_pub is not the connection's noise key")
	}
	if code := s.Scenario().PairCodeError; code != 0 {
		var extra []binxml.Attr
		if code == 400 || code == 429 {
			extra = append(extra, binxml.A("backoff", "60"))
		}
		return refuse(code, pairCodeErrorText[code], "scenario pair_code_error", extra...)
	}
	ref, err := newRef(s.rand)
	if err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	ph := s.phoneLocked(target.User)
	recent := ph.codeRequests[:0]
	for _, t := range ph.codeRequests {
		if now.Sub(t) < rateWindow {
			recent = append(recent, t)
		}
	}
	ph.codeRequests = recent
	if lim := s.scenario.PairCodeRateLimit; lim > 0 && len(recent) >= lim {
		backoff := int(rateWindow.Seconds() - now.Sub(recent[0]).Seconds())
		s.mu.Unlock()
		return refuse(429, pairCodeErrorText[429], "rate limit for "+target.User, binxml.A("backoff", strconv.Itoa(max(backoff, 1))))
	}
	if old := s.codes[target.User]; old != nil && old.entered {
		s.mu.Unlock()
		return refuse(400, "bad-request", "the phone is already typing a code for this number")
	}
	ph.codeRequests = append(ph.codeRequests, now)
	s.codes[target.User] = &codeFlow{
		number: target.User, sess: sess, ref: ref, wrapped: append([]byte(nil), wrapped...),
		display: display, created: now, finished: make(chan finishMsg, 1),
	}
	s.mu.Unlock()
	s.info(sess.id, "pair-code requested for "+target.User)
	return sess.send(ctx, iqResult(id, binxml.Node{Tag: "link_code_companion_reg", Children: []binxml.Node{
		bytesNode("link_code_pairing_ref", []byte(ref)),
	}}))
}

// companionFinish hands stage 3 to the phone that typed the code; it
// answers the IQ once it has tried the key bundle.
func (sess *session) companionFinish(ctx context.Context, id string, reg binxml.Node) error {
	s := sess.srv
	target, _ := reg.AttrJID("jid")
	ref := childContent(reg, "link_code_pairing_ref")
	s.mu.Lock()
	f := s.codes[target.User]
	ok := f != nil && f.sess == sess && f.entered && bytesEqual(ref, []byte(f.ref))
	s.mu.Unlock()
	if !ok {
		s.info(sess.id, "companion_finish without a code typed on the phone")
		return sess.send(ctx, iqError(id, 400, "bad-request"))
	}
	select {
	case f.finished <- finishMsg{id: id, reg: reg}:
	default: // a second finish for the same flow: refuse it
		return sess.send(ctx, iqError(id, 400, "bad-request"))
	}
	return nil
}

// EnterCode is the phone's user typing the code a companion shows
// ("ABCD-1234" or "ABCD1234"). It does the primary's stage 2: unwrap the
// companion's ephemeral, send primary_hello with its own wrapped ephemeral
// and identity key, open the key bundle from companion_finish and derive
// the adv secret, then pair as a QR scan does. A wrong code is detected
// when the bundle does not open: the server refuses companion_finish, the
// flow ends (the companion may ask for a new code on the same connection)
// and the error wraps ErrWrongCode.
func (p *Phone) EnterCode(ctx context.Context, code string) (jid.JID, error) {
	norm, err := pairing.NormalizeCode(code)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %w", ErrWrongCode, err)
	}
	s := p.srv
	linkCtx := ctx // a passkey step may outlast pairReplyTimeout
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pairReplyTimeout)
		defer cancel()
	}
	s.mu.Lock()
	f := s.codes[p.number]
	if f == nil {
		s.mu.Unlock()
		return jid.JID{}, ErrNoPendingCode
	}
	reg := f.sess.reg
	if f.entered || reg.busy || reg.paired {
		s.mu.Unlock()
		return jid.JID{}, ErrBusy
	}
	f.entered = true
	reg.busy = true
	s.mu.Unlock()
	sess := f.sess
	endFlow := func() {
		s.mu.Lock()
		if s.codes[p.number] == f {
			delete(s.codes, p.number)
		}
		s.mu.Unlock()
	}
	defer endFlow()
	handedOff := false
	defer func() {
		if !handedOff {
			s.mu.Lock()
			reg.busy = false
			s.mu.Unlock()
		}
	}()

	companionEph, err := pairing.UnwrapKey(norm, f.wrapped)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %w", ErrWrongCode, err)
	}
	primaryEph, err := keys.NewKeyPair(s.rand)
	if err != nil {
		return jid.JID{}, fmt.Errorf("watest: ephemeral key: %w", err)
	}
	wrapped, err := pairing.WrapKey(s.rand, norm, primaryEph.Public)
	if err != nil {
		return jid.JID{}, fmt.Errorf("watest: wrap ephemeral: %w", err)
	}
	hello := notification(s.newID(), s.unix(), "link_code_companion_reg", binxml.Node{
		Tag:   "link_code_companion_reg",
		Attrs: []binxml.Attr{binxml.A("stage", "primary_hello")},
		Children: []binxml.Node{
			bytesNode("link_code_pairing_wrapped_primary_ephemeral_pub", wrapped),
			bytesNode("primary_identity_pub", p.account.Public.Bytes()),
			bytesNode("link_code_pairing_ref", []byte(f.ref)),
		},
	})
	if err := sess.send(ctx, hello); err != nil {
		return jid.JID{}, err
	}
	var finish finishMsg
	select {
	case finish = <-f.finished:
	case <-sess.gone():
		return jid.JID{}, ErrDisconnected
	case <-ctx.Done():
		return jid.JID{}, ctx.Err()
	}
	id := finish.id
	bundle := childContent(finish.reg, "link_code_pairing_wrapped_key_bundle")
	ident := childContent(finish.reg, "companion_identity_public")
	if !bytesEqual(ident, reg.identity.Bytes()) {
		_ = sess.send(ctx, iqError(id, 400, "bad-request"))
		return jid.JID{}, fmt.Errorf("%w: companion_identity_public differs from the registered identity", ErrWrongCode)
	}
	adv, err := pairing.PrimaryOpenBundle(primaryEph.Private, p.account, companionEph, reg.identity, bundle)
	if err != nil {
		s.info(sess.id, "key bundle did not open: wrong code")
		_ = sess.send(ctx, iqError(id, 400, "bad-request"))
		return jid.JID{}, fmt.Errorf("%w: %w", ErrWrongCode, err)
	}
	if err := sess.send(ctx, iqResult(id)); err != nil {
		return jid.JID{}, err
	}
	endFlow()
	handedOff = true
	if s.Scenario().passkeyGated(p.number, PasskeyCode) {
		return p.link(linkCtx, sess, adv, f.display, PasskeyCode)
	}
	return p.pair(ctx, sess, adv, f.display)
}

// RefreshCode asks the companion with a pending code for this phone to mint
// a new one (stage refresh_code, CHANGES-2026 §4).
func (p *Phone) RefreshCode(ctx context.Context, forceManual bool) error {
	s := p.srv
	s.mu.Lock()
	f := s.codes[p.number]
	s.mu.Unlock()
	if f == nil {
		return ErrNoPendingCode
	}
	attrs := []binxml.Attr{binxml.A("stage", "refresh_code")}
	if forceManual {
		attrs = append(attrs, binxml.A("force_manual_refresh", "true"))
	}
	n := notification(s.newID(), s.unix(), "link_code_companion_reg", binxml.Node{
		Tag: "link_code_companion_reg", Attrs: attrs,
		Children: []binxml.Node{bytesNode("link_code_pairing_ref", []byte(f.ref))},
	})
	return f.sess.send(ctx, n)
}

// allDigits reports a non-empty string of ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validNumber accepts 7–15 digits without a leading zero.
func validNumber(s string) bool {
	if len(s) < 7 || len(s) > 15 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func bytesEqual(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
