package passkey

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"time"
)

// b64url is a byte field written as unpadded base64url, the way WhatsApp's
// JSON and whatsmeow's jsonbytes.UnpaddedURLBytes carry bytes: a "=" pad,
// "+" or "/" does not decode (PASSKEY.md §6.1). null reads as nil.
type b64url []byte

func (b b64url) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	out := make([]byte, 0, base64.RawURLEncoding.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = base64.RawURLEncoding.AppendEncode(out, b)
	return append(out, '"'), nil
}

func (b *b64url) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// AllowedCredential is one entry of allowCredentials.
type AllowedCredential struct {
	ID         []byte
	Type       string   // "public-key"
	Transports []string // e.g. "internal", "hybrid"
}

type allowedJSON struct {
	ID         b64url   `json:"id"`
	Type       string   `json:"type"`
	Transports []string `json:"transports,omitempty"`
}

// optionsJSON is WebAuthn's PublicKeyCredentialRequestOptions as
// whatsmeow's types.WebAuthnPublicKey reads it: encoding/json rules (keys
// match case-insensitively, unknown keys ignored, missing keys zero, timeout
// a JSON integer).
type optionsJSON struct {
	Challenge        b64url          `json:"challenge"`
	Timeout          int             `json:"timeout,omitempty"`
	RPID             string          `json:"rpId,omitempty"`
	AllowCredentials []allowedJSON   `json:"allowCredentials,omitempty"`
	UserVerification string          `json:"userVerification,omitempty"`
	Extensions       json.RawMessage `json:"extensions,omitempty"`
}

// RequestOptions are the WebAuthn PublicKeyCredentialRequestOptions of a
// passkey request. The JSON is kept verbatim (JSON) so it can be handed to
// a browser's navigator.credentials.get or another authenticator as the
// server sent it; the accessors read the parsed values.
type RequestOptions struct {
	raw []byte
	o   optionsJSON
}

// ParseRequestOptions parses the content of <passkey_request_options>. It
// fails exactly where whatsmeow does (then the client fetches the options
// with the IQ): invalid JSON, a byte field that is not unpadded base64url,
// a timeout that is not an integer.
func ParseRequestOptions(b []byte) (RequestOptions, error) {
	var o optionsJSON
	if err := json.Unmarshal(b, &o); err != nil {
		return RequestOptions{}, parseErr("request options", "", err)
	}
	return RequestOptions{raw: bytes.Clone(b), o: o}, nil
}

// NewRequestOptions builds options as the server sends them (primary role):
// {"challenge","timeout","rpId","allowCredentials","userVerification","extensions":{}}.
func NewRequestOptions(challenge []byte, rpID string, timeout time.Duration, allow []AllowedCredential, userVerification string) RequestOptions {
	o := optionsJSON{
		Challenge: challenge, Timeout: int(timeout / time.Millisecond), RPID: rpID,
		UserVerification: userVerification, Extensions: json.RawMessage("{}"),
	}
	for _, a := range allow {
		o.AllowCredentials = append(o.AllowCredentials, allowedJSON{ID: a.ID, Type: a.Type, Transports: a.Transports})
	}
	raw, err := json.Marshal(o)
	if err != nil {
		panic("passkey: marshal of options cannot fail: " + err.Error())
	}
	return RequestOptions{raw: raw, o: o}
}

// JSON returns the options exactly as received (or built).
func (r RequestOptions) JSON() []byte { return bytes.Clone(r.raw) }

// MarshalJSON writes the verbatim JSON, so the options nest unchanged in
// other documents (events, the control API).
func (r RequestOptions) MarshalJSON() ([]byte, error) {
	if r.raw == nil {
		return []byte("null"), nil
	}
	return bytes.Clone(r.raw), nil
}

// IsZero reports options that were never set.
func (r RequestOptions) IsZero() bool { return r.raw == nil }

// Challenge returns the decoded challenge.
func (r RequestOptions) Challenge() []byte { return bytes.Clone(r.o.Challenge) }

// RPID returns the relying party id, e.g. "whatsapp.com".
func (r RequestOptions) RPID() string { return r.o.RPID }

// maxTimeoutMS keeps Timeout from overflowing a time.Duration.
const maxTimeoutMS = math.MaxInt64 / int64(time.Millisecond)

// Timeout returns the timeout hint (600000 ms in practice); 0 when absent
// or negative, saturated at about 292 years.
func (r RequestOptions) Timeout() time.Duration {
	ms := int64(r.o.Timeout)
	switch {
	case ms <= 0:
		return 0
	case ms > maxTimeoutMS:
		ms = maxTimeoutMS
	}
	return time.Duration(ms) * time.Millisecond
}

// UserVerification returns "required", "preferred", "discouraged" or "".
func (r RequestOptions) UserVerification() string { return r.o.UserVerification }

// AllowCredentials returns the credentials the server allows.
func (r RequestOptions) AllowCredentials() []AllowedCredential {
	out := make([]AllowedCredential, 0, len(r.o.AllowCredentials))
	for _, a := range r.o.AllowCredentials {
		out = append(out, AllowedCredential{ID: bytes.Clone(a.ID), Type: a.Type, Transports: append([]string(nil), a.Transports...)})
	}
	return out
}

// Assertion is a WebAuthn assertion (PublicKeyCredential with an
// AuthenticatorAssertionResponse) in the standard JSON form:
// {"id","rawId","type","response":{"clientDataJSON","authenticatorData","signature","userHandle"}}
// with unpadded base64url bytes. Browsers' PublicKeyCredential.toJSON()
// gives this form (its extra keys are ignored).
type Assertion struct {
	ID       string // base64url of RawID, as the authenticator gave it
	RawID    []byte // the credential id; sent as <credential_id>
	Type     string // "public-key"
	Response AssertionResponse
}

// AssertionResponse is the authenticator's response.
type AssertionResponse struct {
	ClientDataJSON    []byte
	AuthenticatorData []byte
	Signature         []byte
	UserHandle        []byte // nil is written as null
}

type assertionJSON struct {
	ID       string `json:"id"`
	RawID    b64url `json:"rawId"`
	Type     string `json:"type"`
	Response struct {
		ClientDataJSON    b64url `json:"clientDataJSON"`
		AuthenticatorData b64url `json:"authenticatorData"`
		Signature         b64url `json:"signature"`
		UserHandle        b64url `json:"userHandle"`
	} `json:"response"`
}

// MarshalJSON writes the compact form whatsmeow sends in
// <webauthn_assertion>, keys in this order (PASSKEY.md §6.2).
func (a Assertion) MarshalJSON() ([]byte, error) {
	var j assertionJSON
	j.ID, j.RawID, j.Type = a.ID, a.RawID, a.Type
	if j.RawID == nil {
		j.RawID = []byte{}
	}
	r := a.Response
	j.Response.ClientDataJSON, j.Response.AuthenticatorData, j.Response.Signature, j.Response.UserHandle =
		nonNil(r.ClientDataJSON), nonNil(r.AuthenticatorData), nonNil(r.Signature), r.UserHandle
	return json.Marshal(j)
}

func nonNil(b []byte) b64url {
	if b == nil {
		return b64url{}
	}
	return b
}

// ParseAssertion reads an assertion in the standard JSON form. It checks
// only the encoding; Valid checks that the fields are there.
func ParseAssertion(b []byte) (Assertion, error) {
	var j assertionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Assertion{}, parseErr("assertion", "", err)
	}
	return Assertion{ID: j.ID, RawID: j.RawID, Type: j.Type, Response: AssertionResponse{
		ClientDataJSON: j.Response.ClientDataJSON, AuthenticatorData: j.Response.AuthenticatorData,
		Signature: j.Response.Signature, UserHandle: j.Response.UserHandle,
	}}, nil
}

// UnmarshalJSON is ParseAssertion.
func (a *Assertion) UnmarshalJSON(b []byte) error {
	v, err := ParseAssertion(b)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Valid reports an assertion missing what every WebAuthn assertion has: a
// raw id, client data, authenticator data (at least 37 bytes) and a
// signature. It does not verify anything: that is the relying party's job.
func (a Assertion) Valid() error {
	switch {
	case len(a.RawID) == 0:
		return errInvalid("no rawId")
	case len(a.Response.ClientDataJSON) == 0:
		return errInvalid("no clientDataJSON")
	case len(a.Response.AuthenticatorData) < 37:
		return errInvalid("authenticatorData shorter than 37 bytes")
	case len(a.Response.Signature) == 0:
		return errInvalid("no signature")
	}
	return nil
}

func errInvalid(msg string) error {
	return &wrapped{msg: "passkey: invalid assertion: " + msg, err: ErrInvalidAssertion}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
