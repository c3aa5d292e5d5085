package watest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/walinkdev/walink/pairing/passkey"
)

// The passkey step's constants on the server side (CHANGES-2026 §6,
// PASSKEY.md §6.1: the values of the options WhatsApp sends).
const (
	passkeyRPID    = "whatsapp.com"
	passkeyOrigin  = "https://web.whatsapp.com"
	passkeyTimeout = 600_000 // ms, the options' timeout and the step's deadline
	// passkeyMaxAttempts bounds refused prologues per step; how many
	// WhatsApp allows is not documented.
	passkeyMaxAttempts = 5
)

// Passkey modes of Scenario.Passkey and Scenario.PasskeyPhones.
const (
	PasskeyOff  = "off"
	PasskeyQR   = "qr"   // after a QR scan
	PasskeyCode = "code" // after companion_finish
	PasskeyBoth = "both"
)

// Phone confirmation modes of Scenario.PasskeyConfirm.
const (
	PasskeyConfirmAuto   = "auto"
	PasskeyConfirmManual = "manual"
)

// Forms of the request notification accepted by Scenario.PasskeyOptions.
const (
	PasskeyOptionsInline  = "inline"
	PasskeyOptionsFetch   = "fetch"
	PasskeyOptionsGarbled = "garbled"
)

// Errors of the passkey step.
var (
	// ErrPasskeyRefused reports a step that ended because the companion's
	// prologues were refused too often.
	ErrPasskeyRefused = errors.New("watest: passkey step refused")
	// ErrPasskeyTimeout reports a step that passed its deadline.
	ErrPasskeyTimeout = errors.New("watest: passkey step timed out")
	// ErrPasskeyCodeMismatch reports a code typed on the phone that is not
	// the one the phone shows (nothing linked; try again until the
	// deadline).
	ErrPasskeyCodeMismatch = errors.New("watest: passkey confirmation code does not match")
	// ErrNoPasskeyStep reports a confirmation on a phone with no passkey
	// step live.
	ErrNoPasskeyStep = errors.New("watest: no passkey step live for this phone")
	// ErrBadOptions reports request options the phone's authenticator
	// cannot use.
	ErrBadOptions = errors.New("watest: unusable passkey request options")
)

func validPasskeyMode(m string) bool {
	switch m {
	case "", PasskeyOff, PasskeyQR, PasskeyCode, PasskeyBoth:
		return true
	}
	return false
}

// validatePasskey checks the passkey knobs of a scenario.
func (s Scenario) validatePasskey() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadScenario}, args...)...)
	}
	if !validPasskeyMode(s.Passkey) {
		return bad("passkey %q: want off, qr, code or both", s.Passkey)
	}
	for num, m := range s.PasskeyPhones {
		if !validNumber(num) || !validPasskeyMode(m) {
			return bad("passkey_phones[%q] = %q: want a number and off, qr, code or both", num, m)
		}
	}
	switch s.PasskeyConfirm {
	case "", PasskeyConfirmAuto, PasskeyConfirmManual:
	default:
		return bad("passkey_confirm %q: want auto or manual", s.PasskeyConfirm)
	}
	switch s.PasskeyOptions {
	case "", PasskeyOptionsInline, PasskeyOptionsFetch, PasskeyOptionsGarbled:
	default:
		return bad("passkey_options %q: want inline, fetch or garbled", s.PasskeyOptions)
	}
	if s.PasskeyTimeoutMS < 0 || s.PasskeyTimeoutMS > 3_600_000 {
		return bad("passkey_timeout_ms %d: want 0 (default 600000) ..3600000", s.PasskeyTimeoutMS)
	}
	return nil
}

// passkeyGated reports whether a link of kind via ("qr" or "code") for
// number must pass the passkey step.
func (s Scenario) passkeyGated(number, via string) bool {
	m := s.Passkey
	if pm, ok := s.PasskeyPhones[number]; ok {
		m = pm
	}
	return m == PasskeyBoth || m == via
}

func (s Scenario) passkeyTimeoutMS() int {
	if s.PasskeyTimeoutMS > 0 {
		return s.PasskeyTimeoutMS
	}
	return passkeyTimeout
}

// SetPasskey sets this phone's passkey mode (off, qr, code or both),
// overriding Scenario.Passkey for its number; "" returns it to the global
// knob.
func (p *Phone) SetPasskey(mode string) error {
	if !validPasskeyMode(mode) {
		return fmt.Errorf("%w: passkey %q: want off, qr, code or both", ErrBadScenario, mode)
	}
	s := p.srv
	s.mu.Lock()
	m := make(map[string]string, len(s.scenario.PasskeyPhones)+1)
	for k, v := range s.scenario.PasskeyPhones {
		m[k] = v
	}
	if mode == "" {
		delete(m, p.number)
	} else {
		m[p.number] = mode
	}
	s.scenario.PasskeyPhones = m
	s.mu.Unlock()
	s.info(0, "phone "+p.number+" passkey mode "+strconv.Quote(mode))
	return nil
}

// passkeyServer is the server's passkey state; its zero value is ready.
// Guarded by Server.mu.
type passkeyServer struct {
	creds map[string]*phoneCredential // by phone number
	steps map[*session]*passkeyStep   // live (or ended, until swept) steps
	used  map[string]bool             // consumed challenges, server-wide
}

// phoneCredential is a phone account's passkey: a P-256 (ES256) key and
// credential id derived from the number, like the phone's other keys.
type phoneCredential struct {
	key        *ecdsa.PrivateKey
	id         []byte
	userHandle []byte
	authCount  uint32 // the authenticator's counter (the phone side)
	rpCount    uint32 // the last counter the server verified
}

func newPhoneCredential(number string) *phoneCredential {
	var key *ecdsa.PrivateKey
	for i := 0; key == nil; i++ {
		// A scalar from the number; the rare hash ≥ n (or 0) is skipped.
		d := sha256.Sum256([]byte("walink/watest phone passkey key\x00" + number + "\x00" + strconv.Itoa(i)))
		key, _ = ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	}
	id := sha256.Sum256([]byte("walink/watest phone passkey credential id\x00" + number))
	uh := sha256.Sum256([]byte("walink/watest phone passkey user handle\x00" + number))
	return &phoneCredential{key: key, id: id[:16], userHandle: uh[:16]}
}

// credLocked returns the phone's credential, creating it on first use.
func (p *Phone) credLocked() *phoneCredential {
	pk := &p.srv.pk
	if pk.creds == nil {
		pk.creds = map[string]*phoneCredential{}
	}
	c := pk.creds[p.number]
	if c == nil {
		c = newPhoneCredential(p.number)
		pk.creds[p.number] = c
	}
	return c
}

// PasskeyInfo describes a phone's passkey as GET /phones/{phone}/passkey
// shows it.
type PasskeyInfo struct {
	CredentialID []byte // raw credential id
	PublicKey    []byte // SPKI DER of the P-256 key
	SignCount    uint32 // the authenticator's current counter
}

// Passkey returns the phone's passkey credential.
func (p *Phone) Passkey() PasskeyInfo {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	c := p.credLocked()
	spki, _ := x509.MarshalPKIXPublicKey(&c.key.PublicKey) // a P-256 key always marshals
	return PasskeyInfo{CredentialID: bytes.Clone(c.id), PublicKey: spki, SignCount: c.authCount}
}

// WebAuthn authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
)

// assertOpts shape an assertion beyond what the options say (tests make
// faulty ones with them).
type assertOpts struct {
	flags    byte    // 0 = UP|UV
	count    *uint32 // nil = the authenticator's next counter
	origin   string  // "" = https://web.whatsapp.com
	typ      string  // "" = webauthn.get
	credID   []byte  // nil = the phone's own
	otherKey bool    // sign with a key that is not the credential's
	rpID     string  // "" = the options' rpId
	// reuseCount: the authenticator's last counter, not the next
	reuseCount bool
}

// AssertOptions make Phone.AssertWith's assertion faulty in one way, so
// tests of clients can see WhatsApp refuse it. The zero value changes
// nothing.
type AssertOptions struct {
	RPID         string // sign for this rpId instead of the options'
	NoUV         bool   // user present but not verified
	BadSignature bool   // sign with a key that is not the credential's
	// ReuseSignCount signs with the counter of the phone's last assertion
	// instead of the next one (a cloned authenticator).
	ReuseSignCount bool
}

// AssertWith is Assert with the faults o asks for; it is for tests of
// clients (a real authenticator cannot be made to send these).
func (p *Phone) AssertWith(options []byte, o AssertOptions) ([]byte, error) {
	ao := assertOpts{otherKey: o.BadSignature, rpID: o.RPID, reuseCount: o.ReuseSignCount}
	if o.NoUV {
		ao.flags = flagUP
	}
	return p.assert(options, ao)
}

// Assert is the phone's passkey standing in for the user's authenticator:
// it answers request options (JSON) with an assertion (standard JSON form)
// made by the phone's credential for the options' challenge and rpId, with
// origin https://web.whatsapp.com, user present and verified, and the next
// sign counter. Options that allow other credentials only are refused, as
// an authenticator would.
func (p *Phone) Assert(options []byte) ([]byte, error) {
	return p.assert(options, assertOpts{})
}

func (p *Phone) assert(options []byte, o assertOpts) ([]byte, error) {
	opts, err := passkey.ParseRequestOptions(options)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if len(opts.Challenge()) == 0 {
		return nil, fmt.Errorf("%w: no challenge", ErrBadOptions)
	}
	rpID := opts.RPID()
	if rpID == "" {
		rpID = passkeyRPID
	}
	if o.rpID != "" {
		rpID = o.rpID
	}
	s := p.srv
	s.mu.Lock()
	c := p.credLocked()
	if allow := opts.AllowCredentials(); len(allow) > 0 {
		found := false
		for _, a := range allow {
			found = found || bytes.Equal(a.ID, c.id)
		}
		if !found {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: the phone's credential is not allowed", ErrBadOptions)
		}
	}
	if !o.reuseCount {
		c.authCount++
	}
	count := c.authCount
	key := c.key
	credID, uh := bytes.Clone(c.id), bytes.Clone(c.userHandle)
	s.mu.Unlock()
	if o.count != nil {
		count = *o.count
	}
	if o.credID != nil {
		credID = o.credID
	}
	if o.otherKey {
		key = newPhoneCredential("other " + p.number).key
	}
	flags := o.flags
	if flags == 0 {
		flags = flagUP | flagUV
	}
	origin, typ := o.origin, o.typ
	if origin == "" {
		origin = passkeyOrigin
	}
	if typ == "" {
		typ = "webauthn.get"
	}
	cdj, err := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, base64.RawURLEncoding.EncodeToString(opts.Challenge()), origin, false})
	if err != nil {
		return nil, err
	}
	rp := sha256.Sum256([]byte(rpID))
	authData := binary.BigEndian.AppendUint32(append(rp[:], flags), count)
	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(authData), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("watest: passkey signature: %w", err)
	}
	return json.Marshal(passkey.Assertion{
		ID: base64.RawURLEncoding.EncodeToString(credID), RawID: credID, Type: "public-key",
		Response: passkey.AssertionResponse{ClientDataJSON: cdj, AuthenticatorData: authData, Signature: sig, UserHandle: uh},
	})
}

// rpVerdict is the relying party's decision on one assertion: refuse (a
// reason for the node log) or accept, with warnings for what is logged but
// not refused, and the counter to store on acceptance.
type rpVerdict struct {
	refuse    string
	warnings  []string
	challenge string
	count     uint32
}

// verifyAssertionLocked checks an assertion as a WebAuthn relying party
// does (WebAuthn §7.2), against the step's challenge and the phone's
// credential. It changes nothing: the caller consumes the challenge and
// stores the counter when it accepts the whole prologue. The checks are
// the ones the issue lists for WhatsApp (CHANGES-2026 §6: "nothing can
// forge it"): type webauthn.get, the issued challenge (single use,
// expiring with the step), rpId hash, UP and UV, a growing counter, the
// ES256 signature. What PASSKEY.md §10 calls not visible (the origin,
// credential_id = rawId) is only logged.
func (st *passkeyStep) verifyAssertionLocked(pk *passkeyServer, credentialID, assertionJSON []byte) rpVerdict {
	var v rpVerdict
	a, err := passkey.ParseAssertion(assertionJSON)
	if err != nil {
		v.refuse = "assertion is not an assertion in the standard JSON form: " + err.Error()
		return v
	}
	if err := a.Valid(); err != nil {
		v.refuse = err.Error()
		return v
	}
	if !bytes.Equal(credentialID, a.RawID) {
		v.warnings = append(v.warnings, "credential_id differs from the assertion's rawId")
	}
	c := st.cred
	if !bytes.Equal(a.RawID, c.id) {
		v.refuse = "credential is not the account's passkey (not in allowCredentials)"
		return v
	}
	var cd struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
		Origin    string `json:"origin"`
	}
	if err := json.Unmarshal(a.Response.ClientDataJSON, &cd); err != nil {
		v.refuse = "clientDataJSON is not JSON"
		return v
	}
	if cd.Type != "webauthn.get" {
		v.refuse = fmt.Sprintf("clientDataJSON type %q is not webauthn.get", cd.Type)
		return v
	}
	ch, err := base64.RawURLEncoding.DecodeString(cd.Challenge)
	switch {
	case err != nil:
		v.refuse = "clientDataJSON challenge is not unpadded base64url"
		return v
	case pk.used[string(ch)]:
		v.refuse = "replayed assertion: its challenge was already used"
		return v
	case !bytes.Equal(ch, st.challenge):
		v.refuse = "assertion is for another challenge than the one issued for this step"
		return v
	}
	v.challenge = string(ch)
	if cd.Origin != passkeyOrigin {
		v.warnings = append(v.warnings, fmt.Sprintf("clientDataJSON origin %q is not %s (not refused: whether WhatsApp checks it is unverified)", cd.Origin, passkeyOrigin))
	}
	ad := a.Response.AuthenticatorData
	rp := sha256.Sum256([]byte(passkeyRPID))
	if !bytes.Equal(ad[:32], rp[:]) {
		v.refuse = "authenticatorData rpIdHash is not SHA-256(\"whatsapp.com\") (wrong rpId)"
		return v
	}
	if ad[32]&flagUP == 0 {
		v.refuse = "authenticatorData: user not present (UP flag clear)"
		return v
	}
	if ad[32]&flagUV == 0 {
		v.refuse = "authenticatorData: user verification required but the UV flag is clear"
		return v
	}
	cdh := sha256.Sum256(a.Response.ClientDataJSON)
	digest := sha256.Sum256(append(bytes.Clone(ad), cdh[:]...))
	if !ecdsa.VerifyASN1(&c.key.PublicKey, digest[:], a.Response.Signature) {
		v.refuse = "ES256 signature over authenticatorData || SHA-256(clientDataJSON) does not verify"
		return v
	}
	// The whole WebAuthn §7.2 procedure once more, by go-webauthn's
	// relying-party code: whatever a standard RP refuses beyond the checks
	// above (malformed authenticator data, an id that is not rawId's
	// base64url, a type other than public-key, …) is refused too. The
	// origin it is given is the one received, since whether WhatsApp
	// checks it is unverified (warned above).
	if err := c.rpVerify(assertionJSON, st.challenge, cd.Origin); err != nil {
		v.refuse = "WebAuthn assertion verification (go-webauthn): " + err.Error()
		return v
	}
	v.count = binary.BigEndian.Uint32(ad[33:37])
	if (v.count != 0 || c.rpCount != 0) && v.count <= c.rpCount {
		v.refuse = fmt.Sprintf("sign counter %d did not grow past %d (cloned authenticator?)", v.count, c.rpCount)
		return v
	}
	return v
}

// coseKey is the credential's public key as a COSE_Key (EC2, ES256, P-256),
// the form a relying party stores at registration.
func (c *phoneCredential) coseKey() ([]byte, error) {
	pub, err := c.key.PublicKey.Bytes() // 04 || X || Y
	if err != nil {
		return nil, err
	}
	return webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256),
		XCoord:        pub[1:33],
		YCoord:        pub[33:65],
	})
}

// rpVerify runs go-webauthn's assertion verification: challenge, rpId
// whatsapp.com, user presence and verification required, the credential's
// ES256 key.
func (c *phoneCredential) rpVerify(assertionJSON, challenge []byte, origin string) error {
	par, err := protocol.ParseCredentialRequestResponseBytes(assertionJSON)
	if err != nil {
		return webauthnErr(err)
	}
	key, err := c.coseKey()
	if err != nil {
		return err
	}
	origins := []string{passkeyOrigin}
	if origin != passkeyOrigin {
		origins = append(origins, origin)
	}
	err = par.Verify(base64.RawURLEncoding.EncodeToString(challenge), passkeyRPID, "", origins, nil, origins,
		protocol.TopOriginImplicitVerificationMode, true, true, true, key, protocol.SignaturePolicy{})
	return webauthnErr(err)
}

// webauthnErr keeps go-webauthn's details in the message.
func webauthnErr(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %s", pe.Type, pe.Details)
	}
	return err
}
