package walink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/pairing/passkey"
)

// PasskeyAuthenticator answers a passkey request by itself (see
// Config.PasskeyAuthenticator): it returns a WebAuthn assertion for the
// request options, or an error. ctx ends at the step's deadline and when
// the connection ends.
type PasskeyAuthenticator func(ctx context.Context, o passkey.RequestOptions) (passkey.Assertion, error)

// PairPasskeyRequest says WhatsApp wants a passkey (WebAuthn) assertion
// before it completes this link (PASSKEY.md): the account is guarded by a
// passkey. Get one for Options from the user's authenticator (a browser's
// navigator.credentials.get with these options at web.whatsapp.com, a
// security key, …) and pass it to Client.SendPasskeyResponse, or set
// Config.PasskeyAuthenticator to answer by itself. Options.JSON() is the
// PublicKeyCredentialRequestOptions verbatim; Options.Challenge(), RPID(),
// Timeout(), AllowCredentials() and UserVerification() read it. The step
// gives up at Deadline; meanwhile the QR stops rotating and the connection
// is kept.
type PairPasskeyRequest struct {
	Options  passkey.RequestOptions
	Deadline time.Time
}

// PairPasskeyConfirmation carries the code the phone shows too, once the
// phone continued after the assertion. Check that both show the same code,
// then call Client.ConfirmPasskey. SkipHandoffUX says a handoff proof went
// with the assertion, so the phone may not ask the user to compare.
type PairPasskeyConfirmation struct {
	Code          string // "XXXX-XXXX"
	SkipHandoffUX bool
}

// PairPasskeyError reports a failure of the passkey step that no API call
// returns: a refused or failed automatic answer, a timeout, a malformed
// notification. Err matches ErrPasskeyRefused (a *passkey.IQError, e.g.
// 401 not-authorized for a refused assertion), ErrPasskeyTimeout,
// passkey.ErrMalformed, …. Continuation is false for the request (a new
// assertion may still be sent until the deadline; WhatsApp may also send a
// new request) and true from the phone's continuation on. Nothing was
// stored.
type PairPasskeyError struct {
	Err          error
	Continuation bool
}

func (PairPasskeyRequest) isEvent()      {}
func (PairPasskeyConfirmation) isEvent() {}
func (PairPasskeyError) isEvent()        {}

// Passkey errors. Each matches the pairing/passkey error of the same
// meaning with errors.Is.
var (
	// ErrPasskeyNoRequest: no passkey request is live on the connection.
	ErrPasskeyNoRequest = passkey.ErrNoRequest
	// ErrPasskeyInProgress: the same call is still waiting for the server,
	// or (PairWithCode) a passkey step holds the pairing.
	ErrPasskeyInProgress = passkey.ErrInProgress
	// ErrPasskeyInvalidAssertion: the assertion lacks a field every
	// WebAuthn assertion has.
	ErrPasskeyInvalidAssertion = passkey.ErrInvalidAssertion
	// ErrPasskeyNotConfirmable: no confirmation code yet (no
	// PairPasskeyConfirmation), or no assertion was sent.
	ErrPasskeyNotConfirmable = passkey.ErrNotConfirmable
	// ErrPasskeyRefused: WhatsApp refused the step's IQ (the assertion, the
	// confirmation); errors.As gives a *passkey.IQError with its code.
	ErrPasskeyRefused = passkey.ErrRefused
	// ErrPasskeyTimeout: a reply did not come in time, or the step passed
	// its deadline.
	ErrPasskeyTimeout = passkey.ErrTimeout
)

// passkeyModeDef is the passkey step's entry in the client's pairing-mode
// registry (Client.modes). Its functions take the client as an argument
// rather than closing over it: a registry entry costs a client no closures.
var passkeyModeDef = pairMode{
	name: engine.PasskeyModeName,
	new: func(c *Client, ctx context.Context) engine.PairingMode {
		mc := engine.PasskeyModeConfig{Rand: c.cfg.Rand, IDs: &c.ids,
			DeviceType: int32(c.pc.DeviceProps().GetPlatformType()), AutoConfirm: c.cfg.PasskeyAutoConfirm}
		if auth := c.cfg.PasskeyAuthenticator; auth != nil {
			mc.Authenticate = func(o passkey.RequestOptions, deadline time.Time) (passkey.Assertion, error) {
				actx, cancel := context.WithDeadline(ctx, deadline)
				defer cancel()
				a, err := auth(actx, o)
				if err != nil {
					return passkey.Assertion{}, fmt.Errorf("walink: passkey authenticator: %w", err)
				}
				return a, nil
			}
		}
		return engine.NewPasskeyMode(mc)
	},
	event: func(c *Client, v any) Event {
		switch e := v.(engine.PasskeyEvent).Event.(type) {
		case passkey.RequestEvent:
			req := PairPasskeyRequest{Options: e.Options, Deadline: e.Deadline}
			c.pkReq.Store(&req)
			return req
		case passkey.ConfirmationEvent:
			return PairPasskeyConfirmation{Code: e.Code, SkipHandoffUX: e.SkipHandoffUX}
		case passkey.ErrorEvent:
			return PairPasskeyError{Err: passkeyErr(e.Err), Continuation: e.Continuation}
		}
		panic(fmt.Sprintf("walink: unmapped passkey event %T", v))
	},
}

func passkeyErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("walink: %w", err) // passkey errors say "passkey: "
}

// PasskeyRequest returns the latest PairPasskeyRequest while it can still
// be answered (before its Deadline, device not linked); ok is false
// otherwise. For services that hand the options to a browser later than
// the event.
func (c *Client) PasskeyRequest() (req PairPasskeyRequest, ok bool) {
	p := c.pkReq.Load()
	if p == nil || c.IsLoggedIn() || !c.now().Before(p.Deadline) {
		return PairPasskeyRequest{}, false
	}
	return *p, true
}

// SendPasskeyResponse answers the live PairPasskeyRequest with a WebAuthn
// assertion (passkey.ParseAssertion reads the standard JSON form). It
// returns once WhatsApp accepted it; the phone then continues and a
// PairPasskeyConfirmation follows. Errors: ErrPasskeyNoRequest,
// ErrPasskeyInProgress, ErrPasskeyInvalidAssertion at once;
// ErrPasskeyRefused (a *passkey.IQError: the assertion was refused, try
// again until the deadline), ErrPasskeyTimeout, ErrNotConnected-like
// connection errors, or ctx's error.
func (c *Client) SendPasskeyResponse(ctx context.Context, a passkey.Assertion) error {
	if c.IsLoggedIn() {
		return fmt.Errorf("walink: %w (%w)", ErrPasskeyNoRequest, ErrAlreadyPaired)
	}
	_, err := c.callMode(ctx, engine.PasskeyModeName, func(id engine.CallID) any {
		return engine.PasskeyRespond{Call: id, Assertion: a}
	})
	return c.passkeyCallErr(err)
}

// ConfirmPasskey says the user checked that the phone shows the code of
// PairPasskeyConfirmation: the client sends its encrypted pairing request
// and returns once WhatsApp accepted it (pair-success then links the
// device, PairSuccess follows). Errors: ErrPasskeyNoRequest,
// ErrPasskeyNotConfirmable, ErrPasskeyInProgress at once;
// ErrPasskeyRefused, ErrPasskeyTimeout, connection errors or ctx's later.
func (c *Client) ConfirmPasskey(ctx context.Context) error {
	if c.IsLoggedIn() {
		return fmt.Errorf("walink: %w (%w)", ErrPasskeyNoRequest, ErrAlreadyPaired)
	}
	_, err := c.callMode(ctx, engine.PasskeyModeName, func(id engine.CallID) any {
		return engine.PasskeyConfirm{Call: id}
	})
	return c.passkeyCallErr(err)
}

func (c *Client) passkeyCallErr(err error) error {
	var pe *passkey.IQError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &pe), errors.Is(err, passkey.ErrMalformed), errors.Is(err, passkey.ErrNoRequest),
		errors.Is(err, passkey.ErrInProgress), errors.Is(err, passkey.ErrInvalidAssertion),
		errors.Is(err, passkey.ErrNoLinkingState), errors.Is(err, passkey.ErrNotConfirmable),
		errors.Is(err, passkey.ErrTimeout):
		return passkeyErr(err)
	}
	return c.apiErr(err, false)
}
