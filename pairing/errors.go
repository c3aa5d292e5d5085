package pairing

import (
	"errors"
	"strings"
)

// Errors. Every error returned by this package matches one of these with
// errors.Is; malformed input is also a *ParseError.
var (
	// ErrInvalidCode reports a pair code that is not 8 characters of
	// CodeAlphabet (after NormalizeCode).
	ErrInvalidCode = errors.New("pairing: invalid pair code")
	// ErrMalformed reports input that cannot be parsed: wrong lengths,
	// bad base64, undecodable protobuf.
	ErrMalformed = errors.New("pairing: malformed input")
	// ErrHMACMismatch reports a pair-success whose HMAC does not verify
	// under the adv secret (reply 401 hmac-mismatch).
	ErrHMACMismatch = errors.New("pairing: hmac mismatch")
	// ErrSignatureMismatch reports an account or device signature that does
	// not verify (reply 401 signature-mismatch).
	ErrSignatureMismatch = errors.New("pairing: signature mismatch")
	// ErrInvalidKey reports a public key that cannot be used: wrong length,
	// zero, or a low-order point (reply 401 invalid-key).
	ErrInvalidKey = errors.New("pairing: invalid key")
	// ErrBundleMismatch reports a pair-code key bundle that does not
	// authenticate or names other identities than expected.
	ErrBundleMismatch = errors.New("pairing: key bundle does not match")
	// ErrInvalidPlatformDisplay reports a companion_platform_display that is
	// not of the form "Browser (OS)" with a known OS; the server answers 400.
	ErrInvalidPlatformDisplay = errors.New("pairing: invalid platform display")
	// ErrInvalidClientType reports an unknown companion platform id.
	ErrInvalidClientType = errors.New("pairing: invalid client type")
)

// ParseError describes malformed input. It matches ErrMalformed and, when
// set, Err. Its message never contains secret material.
type ParseError struct {
	What string // what was being parsed, e.g. "qr", "wrapped key"
	Msg  string // what is wrong with it
	Err  error  // underlying cause, or nil
	// Pkg names the package that reports it at the start of the message;
	// "" is "pairing" (pairing/passkey shares the type).
	Pkg string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Pkg == "" {
		b.WriteString("pairing")
	} else {
		b.WriteString(e.Pkg)
	}
	b.WriteString(": malformed ")
	b.WriteString(e.What)
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns ErrMalformed and the cause, so errors.Is matches both.
func (e *ParseError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMalformed}
	}
	return []error{ErrMalformed, e.Err}
}

func parseErr(what, msg string, cause error) error {
	return &ParseError{What: what, Msg: msg, Err: cause}
}
