package walink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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
	// PlatformID is the companion type id: "1" Chrome, "2" Edge, "3"
	// Firefox, "4" IE, "5" Opera, "6" Safari, "7" Electron, "8" UWP, "9"
	// other web client. Default: the one of Config.PlatformType, as in the
	// QR code ("1" for the default Chrome; "1" for Validate).
	PlatformID string
	// PlatformDisplay is the "Browser (OS)" text the phone shows; default
	// PlatformID's browser on Linux ("Chrome (Linux)"). OS must be one of Windows, Mac OS, Linux, Android,
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
		o.PlatformDisplay = pairing.ClientTypeName(o.PlatformID) + " (Linux)"
	}
	if err := pairing.ValidatePlatformDisplay(o.PlatformDisplay); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalidPlatform, err)
	}
	return o, nil
}

// PairWithCode asks WhatsApp for a pair code for the phone number and
// returns it (also emitted as PairingCode): the user types it on the phone
// under Linked devices > Link with phone number. QR pairing keeps running;
// whichever finishes first wins. Called before the connection is ready, it
// waits for it (up to ctx). Only one code can be outstanding per
// connection: CancelPairCode ends it. A refusal by the server is a
// *PairCodeRejectedError.
func (c *Client) PairWithCode(ctx context.Context, opts PairCodeOptions) (string, error) {
	if opts.PlatformID == "" {
		// The code names the same platform as the QR and the payload.
		opts.PlatformID = c.cfg.PlatformType.clientType()
	}
	opts, err := opts.normalize()
	if err != nil {
		return "", err
	}
	req := engine.CodeRequest{Phone: opts.PhoneNumber, ShowPush: opts.ShowPushNotification, CustomCode: opts.CustomCode,
		PlatformID: opts.PlatformID, Display: opts.PlatformDisplay}
	for {
		if c.IsLoggedIn() {
			return "", ErrAlreadyPaired
		}
		cn, err := c.waitConn(ctx, func(cn *conn) bool { return cn.ready || cn.paired })
		if err != nil {
			return "", err
		}
		code, err := cn.call(ctx,
			func(id engine.CallID) engine.Input { return engine.PairCodeCall{Call: id, Req: req} },
			func(id engine.CallID) engine.Input { return engine.CancelPairCode{Call: id} })
		switch {
		case err == nil:
			return code, nil
		case errors.Is(err, engine.ErrNotReady):
			continue // the connection changed under the call: wait again
		case errors.Is(err, errConnClosed) && c.IsLoggedIn():
			// QR pairing won: its 515 restart cut the request short.
			return "", ErrAlreadyPaired
		case ctx.Err() != nil:
			return "", fmt.Errorf("walink: pair code: %w", ctx.Err())
		}
		return "", c.apiErr(err, true)
	}
}

// prepareCode makes the code (unless custom), the ephemeral key pair and
// the wrapped public key for companion_hello: all the CPU work of asking
// for a code (the session runs engine.PrepareCode as a task).
func prepareCode(rand io.Reader, custom string) (code string, eph keys.KeyPair, wrapped []byte, err error) {
	p, err := engine.PrepareCode(rand, custom)
	return p.Code, p.Eph, p.Wrapped, err
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
	cn.enqueue(item{in: engine.CancelPairCode{}})
	return nil
}
