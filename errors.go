package walink

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the Client.
var (
	ErrClosed           = errors.New("walink: client is closed")
	ErrAlreadyConnected = errors.New("walink: already connected")
	ErrNotConnected     = errors.New("walink: not connected")
	ErrNotLoggedIn      = errors.New("walink: not logged in")
	ErrAlreadyPaired    = errors.New("walink: device is already paired")
	ErrLogoutInProgress = errors.New("walink: logout in progress")
	ErrInvalidConfig    = errors.New("walink: invalid config")
)

// Pair-code errors (PairWithCode).
var (
	ErrPhoneNumberRequired         = errors.New("walink: phone number required")
	ErrPhoneNumberTooShort         = errors.New("walink: phone number too short (at least 7 digits with country code)")
	ErrPhoneNumberNotInternational = errors.New("walink: phone number must be in international format (country code, no leading 0)")
	ErrInvalidCustomCode           = errors.New("walink: custom code must be 8 characters of 123456789ABCDEFGHJKLMNPQRSTVWXYZ")
	ErrInvalidPlatform             = errors.New("walink: invalid pair-code platform")
	ErrMissingPairingRef           = errors.New("walink: companion_hello reply has no pairing ref")
	ErrCodeAlreadyOutstanding      = errors.New("walink: a pair code is already outstanding; call CancelPairCode first")
)

// IQError is an error reply from the server to one of the client's IQs.
// errors.Is matches it by code: errors.Is(err, &IQError{Code: 429}) holds
// for any 429 reply (a non-empty Text in the target must match too).
type IQError struct {
	Code int
	Text string
}

func (e *IQError) Error() string { return fmt.Sprintf("walink: server replied %d %s", e.Code, e.Text) }

// Is reports whether target is an *IQError with the same code (and the
// same text, when target has one).
func (e *IQError) Is(target error) bool {
	t, ok := target.(*IQError)
	return ok && t.Code == e.Code && (t.Text == "" || t.Text == e.Text)
}

// PairCodeRejectedError is the server's refusal of a pair-code stage
// (companion_hello or companion_finish): 400 bad-request (also the
// per-number throttle), 403 forbidden, 429 rate-overlimit, 452
// feature-not-available, 500 internal-server-error.
type PairCodeRejectedError struct {
	Code      int
	Text      string
	Throttled bool          // 400 or 429: wait before asking again
	Backoff   time.Duration // the server's backoff hint (the error's backoff attribute, seconds); 0 when it sent none
}

func (e *PairCodeRejectedError) Error() string {
	s := fmt.Sprintf("walink: pair code rejected: %d %s", e.Code, e.Text)
	if e.Throttled {
		s += " (throttled"
		if e.Backoff > 0 {
			s += ", retry after " + e.Backoff.String()
		}
		s += ")"
	}
	return s
}

// Unwrap lets errors.As find the underlying IQError.
func (e *PairCodeRejectedError) Unwrap() error { return &IQError{Code: e.Code, Text: e.Text} }
