package walink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

// PairCodeOptions configures PairWithCode.
type PairCodeOptions struct {
	// PhoneNumber is the account's number in international format; any
	// non-digits are dropped ("+1-555-123-4567" works). Required.
	PhoneNumber string
	// ShowPushNotification asks WhatsApp to notify the phone that a code
	// is waiting to be typed.
	ShowPushNotification bool
	// CustomCode is used instead of a random code: 8 characters of
	// 123456789ABCDEFGHJKLMNPQRSTVWXYZ (lower case is accepted).
	CustomCode string
	// PlatformID is the companion type id: "1" Chrome (default), "2"
	// Edge, "3" Firefox, "4" IE, "5" Opera, "6" Safari, "7" Electron,
	// "8" UWP, "9" other web client.
	PlatformID string
	// PlatformDisplay is the "Browser (OS)" text the phone shows; default
	// "Chrome (Linux)". OS must be one of Windows, Mac OS, Linux, Android,
	// iOS: WhatsApp refuses anything else and the phone then just says
	// "couldn't link device", so it is checked here.
	PlatformDisplay string
}

// normalize validates the options and fills defaults; it returns the
// digits-only phone number and the upper-cased custom code.
func (o PairCodeOptions) normalize() (PairCodeOptions, error) {
	var digits strings.Builder
	for _, r := range o.PhoneNumber {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	o.PhoneNumber = digits.String()
	switch {
	case o.PhoneNumber == "":
		return o, ErrPhoneNumberRequired
	case strings.HasPrefix(o.PhoneNumber, "0"):
		return o, ErrPhoneNumberNotInternational
	case len(o.PhoneNumber) < 7:
		return o, ErrPhoneNumberTooShort
	}
	if o.CustomCode != "" {
		o.CustomCode = strings.ToUpper(o.CustomCode)
		if len(o.CustomCode) != pairing.CodeLength || strings.Trim(o.CustomCode, pairing.CodeAlphabet) != "" {
			return o, ErrInvalidCustomCode
		}
	}
	if o.PlatformID == "" {
		o.PlatformID = "1"
	}
	if err := pairing.ValidateClientType(o.PlatformID); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalidPlatform, err)
	}
	if o.PlatformDisplay == "" {
		o.PlatformDisplay = "Chrome (Linux)"
	}
	if err := pairing.ValidatePlatformDisplay(o.PlatformDisplay); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalidPlatform, err)
	}
	return o, nil
}

// codeFlow is an outstanding pair code on one connection.
type codeFlow struct {
	engine.CodeFlow
	eph        keys.KeyPair // secret: never logged
	requesting bool         // companion_hello in flight
	inStage2   bool         // a stage-2 task is running
	haveSecret bool
	advSecret  [32]byte
}

func (f *codeFlow) outstanding(now time.Time) bool {
	if f == nil {
		return false
	}
	return f.requesting || f.CodeFlow.Outstanding(now)
}

// PairWithCode asks WhatsApp for a pair code for the phone number and
// returns it (also emitted as PairingCode): the user types it on the phone
// under Linked devices > Link with phone number. QR pairing keeps running;
// whichever finishes first wins. Called before the connection is ready, it
// waits for it (up to ctx). Only one code can be outstanding per
// connection: CancelPairCode ends it.
func (c *Client) PairWithCode(ctx context.Context, opts PairCodeOptions) (string, error) {
	opts, err := opts.normalize()
	if err != nil {
		return "", err
	}
	if c.IsLoggedIn() {
		return "", ErrAlreadyPaired
	}
	cn, err := c.waitConn(ctx, func(cn *conn) bool {
		cn.mu.Lock()
		defer cn.mu.Unlock()
		return cn.ready || cn.paired
	})
	if err != nil {
		return "", err
	}
	cn.mu.Lock()
	switch {
	case cn.paired:
		cn.mu.Unlock()
		return "", ErrAlreadyPaired
	case cn.code.outstanding(c.now()):
		cn.mu.Unlock()
		return "", ErrCodeAlreadyOutstanding
	}
	flow := &codeFlow{requesting: true}
	flow.Lifetime = c.cfg.PairCodeTimeout
	cn.code = flow
	cn.mu.Unlock()

	code, ref, err := cn.companionHello(ctx, opts, flow)
	cn.mu.Lock()
	flow.requesting = false
	if err != nil || cn.paired {
		// QR pairing may have finished while the code was being requested:
		// its pair-success cut the request short (the 515 restart follows)
		// or the server still answered it. Either way the code is dead, and
		// that is the race's other winner, not a failure.
		if cn.code == flow {
			cn.code = nil
		}
		flow.Done = true
		won := cn.paired
		cn.mu.Unlock()
		if won || c.IsLoggedIn() {
			return "", ErrAlreadyPaired
		}
		return "", err
	}
	if cn.code != flow || flow.Done { // cancelled meanwhile
		cn.mu.Unlock()
		return "", fmt.Errorf("walink: pair code cancelled: %w", context.Canceled)
	}
	flow.Code, flow.Phone, flow.Ref, flow.Started = code, opts.PhoneNumber, ref, c.now()
	cn.setCodeTimerLocked(c.cfg.PairCodeTimeout, func() { cn.codeExpired(flow) })
	cn.mu.Unlock()
	c.emit(PairingCode{Code: code, Timeout: c.cfg.PairCodeTimeout})
	return code, nil
}

// companionHello runs stage 1. The PBKDF2 in WrapKey is deliberately slow;
// it runs on the caller's goroutine, never on the read loop.
func (cn *conn) companionHello(ctx context.Context, opts PairCodeOptions, flow *codeFlow) (string, []byte, error) {
	c := cn.c
	code, eph, wrapped, err := prepareCode(c.cfg.Rand, opts.CustomCode)
	if err != nil {
		return "", nil, err
	}
	cn.mu.Lock()
	flow.eph = eph
	cn.mu.Unlock()
	d := c.device()
	if d == nil {
		return "", nil, ErrNotConnected
	}
	resp, err := cn.request(ctx, engine.CompanionHello(c.ids.Next(), opts.PhoneNumber, opts.ShowPushNotification, wrapped, d.NoiseKey.Public, opts.PlatformID, opts.PlatformDisplay))
	if err != nil {
		return "", nil, rejected(err)
	}
	ref := engine.ParseCompanionHelloResult(resp)
	if ref == nil {
		return "", nil, ErrMissingPairingRef
	}
	return code, ref, nil
}

// prepareCode makes the code (unless custom), the ephemeral key pair and
// the wrapped public key for companion_hello: all the CPU work of asking
// for a code.
func prepareCode(rand io.Reader, custom string) (code string, eph keys.KeyPair, wrapped []byte, err error) {
	code = custom
	if code == "" {
		if code, err = pairing.NewCode(rand); err != nil {
			return "", keys.KeyPair{}, nil, fmt.Errorf("walink: making pair code: %w", err)
		}
	}
	if eph, err = keys.NewKeyPair(rand); err != nil {
		return "", keys.KeyPair{}, nil, fmt.Errorf("walink: %w", err)
	}
	if wrapped, err = pairing.WrapKey(rand, code, eph.Public); err != nil {
		return "", keys.KeyPair{}, nil, fmt.Errorf("walink: wrapping key: %w", err)
	}
	return code, eph, wrapped, nil
}

// rejected turns an IQ error into PairCodeRejectedError.
func rejected(err error) error {
	var ie *IQError
	if !errors.As(err, &ie) {
		return err
	}
	return &PairCodeRejectedError{Code: ie.Code, Text: ie.Text, Throttled: ie.Code == 400 || ie.Code == 429}
}

// CancelPairCode ends the outstanding pair code, if any, so a new one can
// be requested. A stage 2 already under way is abandoned.
func (c *Client) CancelPairCode(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil {
		return nil
	}
	cn.mu.Lock()
	if cn.code != nil {
		cn.code.Done = true
		cn.code = nil
	}
	if cn.codeTimer != nil {
		cn.codeTimer.Stop()
	}
	cn.mu.Unlock()
	return nil
}

// setCodeTimerLocked (re)arms the one timer of the outstanding code.
func (cn *conn) setCodeTimerLocked(d time.Duration, f func()) {
	if cn.codeTimer != nil {
		cn.codeTimer.Stop()
	}
	cn.codeTimer = time.AfterFunc(d, f)
}

// endFlowLocked drops flow and, when the QR refs are already spent,
// ends the connection: nothing is left to pair with (CHANGES-2026.md §3).
func (cn *conn) endFlowLocked(flow *codeFlow) {
	flow.Done = true
	if cn.code == flow {
		cn.code = nil
	}
	if cn.qrSpent && !cn.paired && cn.code == nil {
		cn.log.Info("pair code ended after the QR refs expired; disconnecting")
		if cn.end == endNone {
			cn.end = endQRExpired
		}
		cn.cancel()
	}
}

// codeExpired ends a code whose window passed without the phone answering.
func (cn *conn) codeExpired(flow *codeFlow) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.code != flow || flow.Finishing || cn.paired || cn.ctx.Err() != nil {
		return
	}
	cn.log.Info("pair code expired")
	cn.endFlowLocked(flow)
}

// noPairSuccess runs when pair-success did not follow an accepted
// companion_finish in time: the flow is over; the user is asked for a new
// code, and the QR gets a fresh adv secret (CHANGES-2026.md §4).
func (cn *conn) noPairSuccess(flow *codeFlow) {
	cn.mu.Lock()
	if cn.code != flow || cn.paired || cn.ctx.Err() != nil {
		cn.mu.Unlock()
		return
	}
	cn.log.Warn("no pair-success after companion_finish")
	cn.endFlowLocked(flow)
	cn.mu.Unlock()
	cn.c.emit(PairingCodeRefresh{})
	cn.handleRegRefresh()
}

// handleLinkCode dispatches a link_code_companion_reg notification on its
// stage (CHANGES-2026.md §4).
func (cn *conn) handleLinkCode(n binxml.Node) {
	c := cn.c
	lc, err := engine.ParseLinkCodeNotification(n)
	if err != nil {
		cn.log.Warn("bad link_code_companion_reg", "err", err)
		return
	}
	switch lc.Stage {
	case "primary_hello":
		cn.mu.Lock()
		f := cn.code
		if f == nil || cn.paired {
			cn.mu.Unlock()
			cn.log.Info("ignoring primary_hello: no pair code outstanding")
			return
		}
		if f.inStage2 {
			cn.mu.Unlock()
			cn.log.Info("ignoring primary_hello: stage 2 already running")
			return
		}
		if err := f.CheckPrimaryHello(c.now(), lc); err != nil {
			cn.mu.Unlock()
			cn.log.Warn("ignoring primary_hello", "err", err)
			return
		}
		f.Finishing, f.inStage2 = true, true
		eph, code, phone, ref := f.eph, f.Code, f.Phone, f.Ref
		cn.mu.Unlock()
		cn.goTask(func() {
			defer func() {
				cn.mu.Lock()
				f.inStage2 = false
				cn.mu.Unlock()
			}()
			cn.companionFinish(f, eph, code, phone, ref, lc)
		})
	case "refresh_code":
		cn.mu.Lock()
		f := cn.code
		match := f != nil && !f.Done && f.Ref != nil && string(f.Ref) == string(lc.Ref)
		cn.mu.Unlock()
		if match {
			c.emit(PairingCodeRefresh{ForceManual: lc.ForceManual})
		}
	default:
		cn.log.Info("ignoring link_code_companion_reg stage", "stage", lc.Stage)
	}
}

// companionFinish is stage 2, on a task: unwrap the primary's ephemeral key
// with the code (slow PBKDF2), seal the key bundle, derive the adv secret,
// send companion_finish and wait for its answer.
func (cn *conn) companionFinish(f *codeFlow, eph keys.KeyPair, code, phone string, ref []byte, lc engine.LinkCodeNotification) {
	c := cn.c
	fail := func(err error) {
		// End the flow first, so a handler may ask for a new code at once;
		// decide on reporting before, since ending it may end the
		// connection. This task is joined before Disconnected is emitted,
		// so PairError still comes first.
		live := cn.ctx.Err() == nil
		cn.mu.Lock()
		cn.endFlowLocked(f)
		cn.mu.Unlock()
		if live {
			cn.log.Warn("pair code stage 2 failed", "err", err)
			c.emit(PairError{Err: err})
		}
	}
	primaryEph, err := pairing.UnwrapKey(code, lc.WrappedPrimary)
	if err != nil {
		fail(fmt.Errorf("walink: primary_hello: %w", err))
		return
	}
	primaryID, err := keys.PublicKeyFromBytes(lc.PrimaryIdentity)
	if err != nil {
		fail(fmt.Errorf("walink: primary_hello: %w", err))
		return
	}
	d := c.device()
	if d == nil {
		fail(ErrNotConnected)
		return
	}
	bundle, adv, err := pairing.CompanionFinish(c.cfg.Rand, eph.Private, d.IdentityKey, primaryEph, primaryID)
	if err != nil {
		fail(fmt.Errorf("walink: companion_finish: %w", err))
		return
	}
	cn.mu.Lock()
	if cn.code != f || f.Done {
		cn.mu.Unlock()
		return // cancelled or superseded while deriving
	}
	f.advSecret, f.haveSecret = adv, true
	cn.mu.Unlock()
	ctx, cancel := context.WithTimeout(cn.ctx, engine.CompanionFinishWait)
	defer cancel()
	_, err = cn.request(ctx, engine.CompanionFinish(c.ids.Next(), phone, bundle, d.IdentityKey.Public, ref))
	var ie *IQError
	switch {
	case err == nil:
		cn.mu.Lock()
		if cn.code == f && !cn.paired {
			cn.setCodeTimerLocked(c.cfg.PairCodeFinishTimeout, func() { cn.noPairSuccess(f) })
		}
		cn.mu.Unlock()
	case errors.As(err, &ie):
		fail(rejected(err))
	case err != nil:
		// A timeout does not end the flow (CHANGES-2026.md §4): the
		// pair-success may still come.
		cn.log.Warn("no answer to companion_finish", "err", err)
	}
}
