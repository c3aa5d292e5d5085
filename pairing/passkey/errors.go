package passkey

import (
	"errors"
	"fmt"

	"github.com/walinkdev/walink/pairing"
)

// Errors. Every error of this package matches one of these with errors.Is;
// malformed input is also a *ParseError, a refused IQ an *IQError. Messages
// never contain secrets (adv secrets, keys, nonces, codes).
var (
	// ErrMalformed reports input that does not parse: JSON, base64url,
	// protobuf, node shapes, wrong lengths. It is pairing.ErrMalformed: the
	// passkey step is part of pairing.
	ErrMalformed = pairing.ErrMalformed
	// ErrNotFromServer reports a passkey notification whose from is not the
	// JID s.whatsapp.net; it is ignored (PASSKEY.md §2).
	ErrNotFromServer = errors.New("passkey: notification not from the server")
	// ErrNoRequest reports an API call with no passkey request live: no
	// passkey_prologue_request arrived, or the step already ended.
	ErrNoRequest = errors.New("passkey: no passkey request is live")
	// ErrInProgress reports an API call while the same call is still
	// waiting for the server.
	ErrInProgress = errors.New("passkey: a call of this kind is already in progress")
	// ErrNoLinkingState reports a crsc_continuation (or a confirmation)
	// before any passkey_prologue was sent (PASSKEY.md §4.4).
	ErrNoLinkingState = errors.New("passkey: no passkey linking state (send a passkey response first)")
	// ErrNotConfirmable reports a confirmation before the continuation gave
	// an encryption key (PASSKEY.md §8).
	ErrNotConfirmable = errors.New("passkey: no confirmation code yet (the phone has not continued)")
	// ErrInvalidAssertion reports an assertion that lacks a field every
	// WebAuthn assertion has.
	ErrInvalidAssertion = errors.New("passkey: invalid assertion")
	// ErrInvalidKey reports a primary ephemeral key that gives an all-zero
	// X25519 result (a low-order point).
	ErrInvalidKey = errors.New("passkey: invalid primary ephemeral key")
	// ErrRefused is wrapped by every *IQError: the server answered a
	// passkey IQ with an error.
	ErrRefused = errors.New("passkey: refused by the server")
	// ErrTimeout reports a reply that did not come in time, or a step that
	// passed its deadline.
	ErrTimeout = errors.New("passkey: timed out")
	// ErrDecrypt reports an encrypted pairing request that does not open
	// (primary role).
	ErrDecrypt = errors.New("passkey: encrypted pairing request does not open")
	// ErrCommitment reports a companion nonce that does not match the
	// commitment of the prologue (primary role).
	ErrCommitment = errors.New("passkey: companion nonce does not match the commitment")
	// ErrConfig reports a FlowConfig without its required fields.
	ErrConfig = errors.New("passkey: invalid flow config")
	// ErrProof reports a handoff proof that does not verify (primary role).
	ErrProof = errors.New("passkey: handoff proof does not verify")
)

// ParseError describes malformed input: pairing's, with this package's
// name in its message. It matches ErrMalformed and, when set, Err.
type ParseError = pairing.ParseError

func parseErr(what, msg string, cause error) error {
	return &ParseError{What: what, Msg: msg, Err: cause, Pkg: "passkey"}
}

// IQError is an error reply of the server to one of the companion's
// passkey IQs: <iq type="error"><error code text/></iq>. It matches
// ErrRefused.
type IQError struct {
	Stanza string // the IQ's child: "passkey_prologue", "ref", …
	Code   int
	Text   string
}

func (e *IQError) Error() string {
	return fmt.Sprintf("passkey: server refused <%s>: %d %s", e.Stanza, e.Code, e.Text)
}

// Unwrap returns ErrRefused.
func (e *IQError) Unwrap() error { return ErrRefused }
