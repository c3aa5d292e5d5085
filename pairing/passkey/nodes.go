package passkey

import (
	"strconv"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
)

// Notification types and IQ child tags of the step (PASSKEY.md §3, §4).
const (
	TypePrologueRequest = "passkey_prologue_request"
	TypeContinuation    = "crsc_continuation"

	TagRequestOptions          = "passkey_request_options"
	TagRef                     = "ref"
	TagPrologue                = "passkey_prologue"
	TagCompanionNonce          = "companion_nonce"
	TagEncryptedPairingRequest = "encrypted_pairing_request"
	TagPrimaryIdentity         = "primary_ephemeral_identity"

	tagCredentialID = "credential_id"
	tagAssertion    = "webauthn_assertion"
	tagPayload      = "prologue_payload"
	tagProof        = "pairing_handoff_proof"
)

// IsStepIQ reports whether a companion IQ child belongs to the step, so a
// server can route it: passkey_request_options, ref, passkey_prologue,
// companion_nonce, encrypted_pairing_request.
func IsStepIQ(child string) bool {
	switch child {
	case TagRequestOptions, TagRef, TagPrologue, TagCompanionNonce, TagEncryptedPairingRequest:
		return true
	}
	return false
}

// Companion → server IQs: <iq id=… xmlns="md" type=… to="s.whatsapp.net">
// with exactly one child (PASSKEY.md §2).
func iq(id, typ string, child binxml.Node) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{
		binxml.A("id", id), binxml.A("xmlns", "md"), binxml.A("type", typ), binxml.AJ("to", jid.ServerJID),
	}, Children: []binxml.Node{child}}
}

// RequestOptionsIQ is the fallback fetch (§4.1b):
// <iq type="get"><passkey_request_options/></iq>.
func RequestOptionsIQ(id string) binxml.Node {
	return iq(id, "get", binxml.Node{Tag: TagRequestOptions})
}

// RefIQ asks for the ref of the companion identity (§4.2): <iq type="get"><ref/></iq>.
func RefIQ(id string) binxml.Node { return iq(id, "get", binxml.Node{Tag: TagRef}) }

// PrologueStanza is the content of <passkey_prologue> (§4.3).
type PrologueStanza struct {
	CredentialID []byte // raw credential id (the assertion's rawId)
	Assertion    []byte // the assertion's compact JSON
	Payload      []byte // serialized ProloguePayload
	Proof        []byte // 32-byte handoff proof, nil when none is sent
}

// PrologueIQ is
//
//	<iq type="set"><passkey_prologue>
//	  <credential_id/> <webauthn_assertion/> <prologue_payload/> [<pairing_handoff_proof/>]
//	</passkey_prologue></iq>
//
// children in exactly this order, no attributes.
func PrologueIQ(id string, p PrologueStanza) binxml.Node {
	ch := []binxml.Node{
		{Tag: tagCredentialID, Content: nonNilBytes(p.CredentialID)},
		{Tag: tagAssertion, Content: nonNilBytes(p.Assertion)},
		{Tag: tagPayload, Content: nonNilBytes(p.Payload)},
	}
	if p.Proof != nil {
		ch = append(ch, binxml.Node{Tag: tagProof, Content: p.Proof})
	}
	return iq(id, "set", binxml.Node{Tag: TagPrologue, Children: ch})
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ParsePrologueIQ is the server's reading of a passkey_prologue IQ (or of
// the <passkey_prologue> child itself). credential_id, webauthn_assertion
// and prologue_payload are required; the proof, when present, must be 32
// bytes.
func ParsePrologueIQ(n binxml.Node) (PrologueStanza, error) {
	c := n
	if n.Tag != TagPrologue {
		var ok bool
		if c, ok = n.Child(TagPrologue); !ok {
			return PrologueStanza{}, parseErr("passkey_prologue", "no <passkey_prologue>", nil)
		}
	}
	var p PrologueStanza
	for _, req := range []struct {
		tag string
		dst *[]byte
	}{{tagCredentialID, &p.CredentialID}, {tagAssertion, &p.Assertion}, {tagPayload, &p.Payload}} {
		x, ok := c.Child(req.tag)
		if !ok || len(x.Content) == 0 {
			return PrologueStanza{}, parseErr("passkey_prologue", "no <"+req.tag+">", nil)
		}
		*req.dst = x.Content
	}
	if x, ok := c.Child(tagProof); ok {
		if len(x.Content) != 32 {
			return PrologueStanza{}, parseErr("passkey_prologue", "handoff proof is not 32 bytes", nil)
		}
		p.Proof = x.Content
	}
	return p, nil
}

// CompanionNonceIQ reveals the companion nonce (§4.5):
// <iq type="set"><companion_nonce>32 bytes</companion_nonce></iq>.
func CompanionNonceIQ(id string, nonce [NonceSize]byte) binxml.Node {
	return iq(id, "set", binxml.Node{Tag: TagCompanionNonce, Content: nonce[:]})
}

// ParseCompanionNonceIQ reads the nonce of a companion_nonce IQ.
func ParseCompanionNonceIQ(n binxml.Node) ([NonceSize]byte, error) {
	c, ok := n.Child(TagCompanionNonce)
	if !ok || len(c.Content) != NonceSize {
		return [NonceSize]byte{}, parseErr("companion_nonce", "want 32 bytes", nil)
	}
	return [NonceSize]byte(c.Content), nil
}

// EncryptedPairingRequestIQ sends the sealed request (§4.6):
// <iq type="set"><encrypted_pairing_request>serialized EncryptedPairingRequest</…></iq>.
func EncryptedPairingRequestIQ(id string, sealed []byte) binxml.Node {
	return iq(id, "set", binxml.Node{Tag: TagEncryptedPairingRequest, Content: sealed})
}

// ParseEncryptedPairingRequestIQ returns the serialized
// EncryptedPairingRequest of the IQ, checked to parse.
func ParseEncryptedPairingRequestIQ(n binxml.Node) ([]byte, error) {
	c, ok := n.Child(TagEncryptedPairingRequest)
	if !ok || len(c.Content) == 0 {
		return nil, parseErr("encrypted_pairing_request", "no content", nil)
	}
	if _, _, err := ParseEncryptedPairingRequest(c.Content); err != nil {
		return nil, err
	}
	return c.Content, nil
}

// Server → companion.

func fromServer() binxml.Attr { return binxml.AJ("from", jid.ServerJID) }

func notification(id, t, typ string, children []binxml.Node) binxml.Node {
	attrs := []binxml.Attr{fromServer(), binxml.A("id", id)}
	if t != "" {
		attrs = append(attrs, binxml.A("t", t))
	}
	attrs = append(attrs, binxml.A("type", typ))
	return binxml.Node{Tag: "notification", Attrs: attrs, Children: children}
}

// PrologueRequest is the server's request (§4.1):
// <notification from=s.whatsapp.net(JID) id t type="passkey_prologue_request">
// <passkey_request_options>JSON</passkey_request_options></notification>.
// With options nil the child is left out (the companion then fetches it).
func PrologueRequest(id, t string, options []byte) binxml.Node {
	var ch []binxml.Node
	if options != nil {
		ch = []binxml.Node{{Tag: TagRequestOptions, Content: options}}
	}
	return notification(id, t, TypePrologueRequest, ch)
}

// checkServerNotification requires a notification of type typ from the
// JID s.whatsapp.net (a string from, or another JID, is ErrNotFromServer).
func checkServerNotification(n binxml.Node, typ string) error {
	if n.Tag != "notification" || n.Attr("type") != typ {
		return parseErr(typ, "not a "+typ+" notification", nil)
	}
	from, ok := n.AttrJID("from")
	if !ok || from != jid.ServerJID {
		return ErrNotFromServer
	}
	for _, a := range n.Attrs {
		if a.Key == "from" && !a.IsJID() {
			return ErrNotFromServer
		}
	}
	return nil
}

// ParsePrologueRequest reads the options of a passkey_prologue_request. An
// error wrapping ErrNotFromServer means: ignore the stanza. Any other error
// (no child, content that is not valid options) means: fetch the options
// with RequestOptionsIQ (PASSKEY.md §3 row 1b).
func ParsePrologueRequest(n binxml.Node) (RequestOptions, error) {
	if err := checkServerNotification(n, TypePrologueRequest); err != nil {
		return RequestOptions{}, err
	}
	c, ok := n.Child(TagRequestOptions)
	if !ok {
		return RequestOptions{}, parseErr(TypePrologueRequest, "no <passkey_request_options>", nil)
	}
	return ParseRequestOptions(c.Content)
}

// RequestOptionsResult answers the fallback fetch:
// <iq from id type="result"><passkey_request_options>JSON</…></iq>.
func RequestOptionsResult(id string, options []byte) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{fromServer(), binxml.A("id", id), binxml.A("type", "result")},
		Children: []binxml.Node{{Tag: TagRequestOptions, Content: options}}}
}

// ParseRequestOptionsResult reads the options from the fetch's result; the
// options must be a direct child (§4.1b). An error reply is an *IQError.
func ParseRequestOptionsResult(n binxml.Node) (RequestOptions, error) {
	if err := ParseReply(n, TagRequestOptions); err != nil {
		return RequestOptions{}, err
	}
	c, ok := n.Child(TagRequestOptions)
	if !ok {
		return RequestOptions{}, parseErr("passkey_request_options result", "no direct <passkey_request_options>", nil)
	}
	return ParseRequestOptions(c.Content)
}

// RefResult answers the ref IQ: <iq from id type="result"><ref>REF</ref></iq>.
func RefResult(id, ref string) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{fromServer(), binxml.A("id", id), binxml.A("type", "result")},
		Children: []binxml.Node{{Tag: TagRef, Content: []byte(ref)}}}
}

// ParseRefResult reads the ref (non-empty bytes, used as an opaque string).
func ParseRefResult(n binxml.Node) (string, error) {
	if err := ParseReply(n, TagRef); err != nil {
		return "", err
	}
	c, ok := n.Child(TagRef)
	if !ok || len(c.Content) == 0 {
		return "", parseErr("ref result", "no <ref> content", nil)
	}
	return string(c.Content), nil
}

// Continuation is the phone's answer to the prologue (§4.4):
// <notification from id t type="crsc_continuation"><primary_ephemeral_identity>…</…></notification>.
func Continuation(id, t string, p PrimaryIdentity) binxml.Node {
	return notification(id, t, TypeContinuation, []binxml.Node{{Tag: TagPrimaryIdentity, Content: p.Marshal()}})
}

// ParseContinuation reads a crsc_continuation. ErrNotFromServer means:
// ignore it.
func ParseContinuation(n binxml.Node) (PrimaryIdentity, error) {
	if err := checkServerNotification(n, TypeContinuation); err != nil {
		return PrimaryIdentity{}, err
	}
	c, ok := n.Child(TagPrimaryIdentity)
	if !ok {
		return PrimaryIdentity{}, parseErr(TypeContinuation, "no <primary_ephemeral_identity>", nil)
	}
	return ParsePrimaryIdentity(c.Content)
}

// ParseReply checks an IQ reply: nil for type="result", an *IQError for
// type="error" (code and text of its <error/>), ErrMalformed otherwise.
func ParseReply(n binxml.Node, stanza string) error {
	if n.Tag != "iq" {
		return parseErr(stanza+" reply", "not an iq", nil)
	}
	switch n.Attr("type") {
	case "result":
		return nil
	case "error":
		e := &IQError{Stanza: stanza}
		if c, ok := n.Child("error"); ok {
			e.Code, _ = strconv.Atoi(c.Attr("code"))
			e.Text = c.Attr("text")
		}
		return e
	}
	return parseErr(stanza+" reply", "type is neither result nor error", nil)
}
