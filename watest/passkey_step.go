package watest

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/pairing/passkey"
)

// passkeyStep is the server and phone side of one passkey step on a
// registration connection (PASSKEY.md §3). The phone goroutine that began
// it (ScanQR or EnterCode) waits in passkeyLink; the connection's read
// loop feeds it the companion's IQs (passkeyIQ); Phone.ConfirmPasskey
// types the code. All fields are guarded by Server.mu; changed is closed
// and replaced at every change.
type passkeyStep struct {
	phone     *Phone
	sess      *session
	via       string   // "qr" or "code"
	shown     [32]byte // the adv secret the phone saw (QR or pair code)
	cred      *phoneCredential
	options   passkey.RequestOptions
	challenge []byte
	deadline  time.Time
	manual    bool
	ref       string // the last ref handed out by <ref/>
	attempts  int    // refused prologues

	accepted bool // a prologue passed
	proofOK  bool
	prologue passkey.Prologue
	eph      keys.KeyPair
	nonce    [passkey.NonceSize]byte
	code     string
	key      [32]byte
	haveKey  bool
	request  *passkey.PairingRequest
	confirm  bool // the phone confirmed the code

	ended   bool // the step is over (linked or failed)
	err     error
	dev     jid.JID
	changed chan struct{}
}

func (st *passkeyStep) wakeLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

func (st *passkeyStep) endLocked(dev jid.JID, err error) {
	if st.ended {
		return
	}
	st.ended, st.dev, st.err = true, dev, err
	st.wakeLocked()
}

// link pairs a companion whose QR was scanned (via "qr") or whose key
// bundle opened (via "code"), through the passkey step when the scenario
// gates this phone's account behind it. reg.busy is set by the caller.
func (p *Phone) link(ctx context.Context, sess *session, adv [32]byte, platform, via string) (jid.JID, error) {
	if !p.srv.Scenario().passkeyGated(p.number, via) {
		return p.pair(ctx, sess, adv, platform)
	}
	return p.passkeyLink(ctx, sess, adv, platform, via)
}

// passkeyLink runs the step: it sends passkey_prologue_request, waits
// until the companion's pairing request has been decrypted and the phone
// has confirmed the code, and then pairs with the new adv secret the
// companion sent (PASSKEY.md §4.7).
func (p *Phone) passkeyLink(ctx context.Context, sess *session, shown [32]byte, platform, via string) (jid.JID, error) {
	s := p.srv
	handedOff := false
	defer func() {
		if !handedOff {
			s.mu.Lock()
			sess.reg.busy = false
			s.mu.Unlock()
		}
	}()
	var challenge [32]byte
	if _, err := io.ReadFull(s.rand, challenge[:]); err != nil {
		return jid.JID{}, fmt.Errorf("watest: rand: %w", err)
	}
	sc := s.Scenario()
	timeout := time.Duration(sc.passkeyTimeoutMS()) * time.Millisecond
	s.mu.Lock()
	cred := p.credLocked()
	st := &passkeyStep{
		phone: p, sess: sess, via: via, shown: shown, cred: cred, challenge: challenge[:],
		deadline: s.now().Add(timeout), manual: sc.PasskeyConfirm == PasskeyConfirmManual,
		changed: make(chan struct{}),
	}
	// The options WhatsApp sends (CHANGES-2026 §6, PASSKEY.md §6.1): rpId
	// whatsapp.com, user verification required, the account's passkey.
	st.options = passkey.NewRequestOptions(st.challenge, passkeyRPID, timeout,
		[]passkey.AllowedCredential{{ID: cred.id, Type: "public-key", Transports: []string{"internal", "hybrid"}}}, "required")
	pk := &s.pk
	if pk.steps == nil {
		pk.steps = map[*session]*passkeyStep{}
	}
	for old := range pk.steps {
		if old.isGone() { // swept: the connection is gone
			delete(pk.steps, old)
		}
	}
	pk.steps[sess] = st
	s.mu.Unlock()

	inline := st.options.JSON()
	switch sc.PasskeyOptions {
	case PasskeyOptionsFetch:
		inline = nil
	case PasskeyOptionsGarbled:
		// Padded base64url: whatsmeow (and walink) refuse it and fetch
		// the options with the IQ (PASSKEY.md §6.1).
		inline = []byte(`{"challenge":"` + base64.URLEncoding.EncodeToString(st.challenge) + `","rpId":"whatsapp.com"}`)
	}
	n := passkey.PrologueRequest(s.newID(), s.unix(), inline)
	if err := sess.send(ctx, n); err != nil {
		return jid.JID{}, err
	}
	s.info(sess.id, fmt.Sprintf("passkey step after %s for %s: request sent, deadline %s", via, p.number, st.deadline.UTC().Format(time.RFC3339)))

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var req passkey.PairingRequest
	for {
		s.mu.Lock()
		ready := st.request != nil && st.confirm && !st.ended
		ended, err := st.ended, st.err
		if ready {
			req = *st.request
		}
		changed := st.changed
		s.mu.Unlock()
		if ended {
			return jid.JID{}, err
		}
		if ready {
			break
		}
		select {
		case <-changed:
		case <-timer.C:
			s.mu.Lock()
			st.endLocked(jid.JID{}, fmt.Errorf("%w after %s", ErrPasskeyTimeout, timeout))
			s.mu.Unlock()
			s.info(sess.id, fmt.Sprintf("passkey step timed out after %s: nothing linked", timeout))
			// The loop returns the error.
		case <-sess.gone():
			s.mu.Lock()
			st.endLocked(jid.JID{}, ErrDisconnected)
			s.mu.Unlock()
			s.info(sess.id, "passkey step: companion disconnected")
		case <-ctx.Done():
			s.mu.Lock()
			st.endLocked(jid.JID{}, ctx.Err())
			s.mu.Unlock()
		}
	}
	s.info(sess.id, "passkey step: phone confirmed the code; pair-success keyed by the companion's new adv secret")
	handedOff = true
	pctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, pairReplyTimeout)
		defer cancel()
	}
	dev, err := p.pair(pctx, sess, req.AdvSecret, platform)
	s.mu.Lock()
	st.endLocked(dev, err)
	s.mu.Unlock()
	return dev, err
}

// passkeyIQ serves the companion's IQs of the step (PASSKEY.md §4). It runs
// on the read loop and never waits on the phone.
func (sess *session) passkeyIQ(ctx context.Context, id, typ string, n, child binxml.Node) error {
	s := sess.srv
	refuse := func(code int, text, why string) error {
		s.info(sess.id, "passkey <"+child.Tag+"> refused: "+why)
		return sess.send(ctx, iqError(id, code, text))
	}
	wantType := "set"
	if child.Tag == passkey.TagRequestOptions || child.Tag == passkey.TagRef {
		wantType = "get"
	}
	if typ != wantType {
		return refuse(400, "bad-request", "type "+typ+", want "+wantType)
	}
	s.mu.Lock()
	st := s.pk.steps[sess]
	if st == nil || st.ended {
		why := "no passkey step on this connection"
		if st != nil {
			why = "the passkey step is over"
			if st.err != nil {
				why += " (" + st.err.Error() + ")"
			}
		}
		s.mu.Unlock()
		// What WhatsApp answers out of a step is not documented.
		return refuse(401, "not-authorized", why)
	}
	if !s.now().Before(st.deadline) {
		st.endLocked(jid.JID{}, ErrPasskeyTimeout)
		s.mu.Unlock()
		return refuse(401, "not-authorized", "the passkey step timed out")
	}
	s.mu.Unlock()
	switch child.Tag {
	case passkey.TagRequestOptions:
		s.mu.Lock()
		opts := st.options.JSON()
		s.mu.Unlock()
		return sess.send(ctx, passkey.RequestOptionsResult(id, opts))
	case passkey.TagRef:
		ref, err := newRef(s.rand)
		if err != nil {
			return err
		}
		s.mu.Lock()
		st.ref = ref
		s.mu.Unlock()
		return sess.send(ctx, passkey.RefResult(id, ref))
	case passkey.TagPrologue:
		return sess.passkeyPrologue(ctx, id, st, n, refuse)
	case passkey.TagCompanionNonce:
		nonce, err := passkey.ParseCompanionNonceIQ(n)
		if err != nil {
			return refuse(400, "bad-request", err.Error())
		}
		s.mu.Lock()
		if !st.accepted {
			s.mu.Unlock()
			return refuse(400, "bad-request", "companion_nonce before an accepted passkey_prologue")
		}
		if passkey.Commitment(st.prologue.IdentityBytes, nonce) != st.prologue.Commitment {
			s.mu.Unlock()
			return refuse(400, "bad-request", "companion nonce does not match the prologue's commitment")
		}
		ss, err := passkey.SharedSecret(st.eph.Private, st.prologue.Identity.PublicKey)
		if err != nil {
			s.mu.Unlock()
			return refuse(400, "bad-request", "companion ephemeral key is of low order")
		}
		st.key = passkey.EncryptionKey(ss, st.prologue.Identity.DeviceType, st.prologue.Identity.Ref)
		st.code = passkey.ConfirmationCode(nonce, st.eph.Public.Array(), st.nonce)
		st.haveKey = true
		st.wakeLocked()
		s.mu.Unlock()
		s.info(sess.id, "passkey commitment checked; the phone shows the confirmation code")
		return sess.send(ctx, iqResult(id))
	case passkey.TagEncryptedPairingRequest:
		sealed, err := passkey.ParseEncryptedPairingRequestIQ(n)
		if err != nil {
			return refuse(400, "bad-request", err.Error())
		}
		s.mu.Lock()
		if !st.haveKey {
			s.mu.Unlock()
			return refuse(400, "bad-request", "encrypted_pairing_request before companion_nonce")
		}
		req, err := passkey.OpenPairingRequest(st.key, sealed)
		if err != nil {
			s.mu.Unlock()
			return refuse(400, "bad-request", "pairing request does not decrypt: "+err.Error())
		}
		// The phone checks what it can (PASSKEY.md §7): the Noise key of
		// the registration connection and the registered identity.
		if !req.CompanionNoise.Equal(sess.static) || !req.CompanionIdentity.Equal(sess.reg.identity) {
			s.mu.Unlock()
			return refuse(400, "bad-request", "pairing request names another noise key or identity than the registration")
		}
		st.request = &req
		if !st.manual {
			st.confirm = true
		}
		manual := st.manual && !st.confirm
		st.wakeLocked()
		s.mu.Unlock()
		note := "passkey pairing request decrypted"
		if manual {
			note += "; waiting for the code to be confirmed on the phone"
		}
		s.info(sess.id, note)
		return sess.send(ctx, iqResult(id))
	}
	return refuse(400, "bad-request", "unknown passkey stanza")
}

// passkeyPrologue verifies a prologue: the assertion as a relying party
// (verifyAssertionLocked), the payload, and the handoff proof when one is
// sent; then the phone answers with crsc_continuation.
func (sess *session) passkeyPrologue(ctx context.Context, id string, st *passkeyStep, n binxml.Node, refuse func(int, string, string) error) error {
	s := sess.srv
	ps, err := passkey.ParsePrologueIQ(n)
	if err != nil {
		return refuse(400, "bad-request", err.Error())
	}
	pro, err := passkey.ParsePrologue(ps.Payload)
	if err != nil {
		return refuse(400, "bad-request", err.Error())
	}
	s.mu.Lock()
	if s.pk.used == nil {
		s.pk.used = map[string]bool{}
	}
	v := st.verifyAssertionLocked(&s.pk, ps.CredentialID, ps.Assertion)
	if v.refuse == "" && ps.Proof != nil && !passkey.VerifyHandoffProof(st.shown, ps.Payload, ps.Proof) {
		v.refuse = "stale handoff proof: not keyed by the adv secret the phone showed"
	}
	if v.refuse != "" {
		st.attempts++
		last := st.attempts >= passkeyMaxAttempts
		if last {
			st.endLocked(jid.JID{}, fmt.Errorf("%w: %d prologues refused, the last because: %s", ErrPasskeyRefused, st.attempts, v.refuse))
		}
		s.mu.Unlock()
		for _, w := range v.warnings {
			s.info(sess.id, "passkey assertion warning: "+w)
		}
		// A refused assertion is 401 not-authorized (the reading of
		// WhatsApp; PASSKEY.md §10: "presumably an IQ error on 4.3").
		return refuse(401, "not-authorized", v.refuse)
	}
	s.pk.used[v.challenge] = true
	st.cred.rpCount = v.count
	st.accepted, st.proofOK, st.prologue = true, ps.Proof != nil, pro
	refNote := ""
	if pro.Identity.Ref != st.ref {
		// Nothing says the ref must be the one <ref/> gave (PASSKEY.md §10).
		refNote = "; its ref is not the one <ref/> handed out (accepted)"
	}
	eph, err := keys.NewKeyPair(s.rand)
	if err == nil {
		_, err = io.ReadFull(s.rand, st.nonce[:])
	}
	st.eph = eph
	st.wakeLocked()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("watest: rand: %w", err)
	}
	for _, w := range v.warnings {
		s.info(sess.id, "passkey assertion warning: "+w)
	}
	proof := "no handoff proof"
	if ps.Proof != nil {
		proof = "handoff proof verified"
	}
	s.info(sess.id, fmt.Sprintf("passkey assertion verified (sign count %d, %s)%s", v.count, proof, refNote))
	if err := sess.send(ctx, iqResult(id)); err != nil {
		return err
	}
	return sess.send(ctx, passkey.Continuation(s.newID(), s.unix(), passkey.PrimaryIdentity{PublicKey: eph.Public, Nonce: st.nonce}))
}

// ConfirmPasskey is the phone's user typing (or accepting) the code the
// companion shows ("XXXX-XXXX"). It waits, up to the step's deadline, for
// the phone to have its own code; a different code is ErrPasskeyCodeMismatch
// (nothing linked; the user may try again). The right code lets the phone
// go on once the companion's pairing request is in: ConfirmPasskey
// returns when linking ends, with the device or the step's error.
func (p *Phone) ConfirmPasskey(ctx context.Context, code string) (jid.JID, error) {
	norm, err := pairing.NormalizeCode(code)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %w", ErrPasskeyCodeMismatch, err)
	}
	s := p.srv
	s.mu.Lock()
	var st *passkeyStep
	for _, x := range s.pk.steps {
		if x.phone == p && !x.ended {
			st = x
		}
	}
	s.mu.Unlock()
	if st == nil {
		return jid.JID{}, ErrNoPasskeyStep
	}
	checked := false
	for {
		s.mu.Lock()
		if st.ended {
			dev, err := st.dev, st.err
			s.mu.Unlock()
			return dev, err
		}
		if st.haveKey && !checked {
			mine, _ := pairing.NormalizeCode(st.code)
			if subtle.ConstantTimeCompare([]byte(mine), []byte(norm)) != 1 {
				s.mu.Unlock()
				s.info(st.sess.id, "passkey code typed on the phone does not match the phone's code: nothing linked")
				return jid.JID{}, ErrPasskeyCodeMismatch
			}
			checked = true
			st.confirm = true
			st.wakeLocked()
			s.mu.Unlock()
			s.info(st.sess.id, "passkey code confirmed on the phone")
			continue
		}
		changed := st.changed
		deadline := st.deadline
		s.mu.Unlock()
		t := time.NewTimer(max(deadline.Sub(s.now()), 0) + time.Second)
		select {
		case <-changed:
			t.Stop()
		case <-t.C:
			return jid.JID{}, ErrPasskeyTimeout
		case <-ctx.Done():
			t.Stop()
			return jid.JID{}, ctx.Err()
		}
	}
}

// passkeyStatus maps the step's errors onto the control API's statuses.
func passkeyStatus(err error) (int, bool) {
	switch {
	case errors.Is(err, ErrPasskeyCodeMismatch):
		return 409, true
	case errors.Is(err, ErrNoPasskeyStep):
		return 404, true
	case errors.Is(err, ErrPasskeyRefused), errors.Is(err, ErrBadOptions):
		return 422, true
	case errors.Is(err, ErrPasskeyTimeout):
		return 504, true
	}
	return 0, false
}
