package binxml

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// defaultMaxContent is how much content Node.String shows before a note.
const defaultMaxContent = 256

// Format renders nodes as XML-ish text for logs:
//
//	<iq id="1" type="get"><ping/></iq>
//
// Content is shown as text when it is printable UTF-8, as hex otherwise, and
// as a "<!-- N bytes -->" note when it is longer than MaxContent. Attribute
// order is the node's. The zero Format is what [Node.String] uses.
type Format struct {
	// MaxContent is the longest content shown; 0 means 256, negative means
	// no limit.
	MaxContent int
	// Redact, when set, is asked about every attribute (key != "") and
	// every node with content (key == ""); path holds the tags from the
	// root to the node and is reused between calls: copy it to keep it.
	// Returning true replaces the value with a note.
	Redact func(path []string, key string) bool
}

// String renders n as XML-ish text for logs.
func (n Node) String() string { return string(Format{}.Append(nil, n)) }

// StringRedacted is n.String() with values hidden where redact says so (see
// [Format.Redact]); [RedactSensitive] is a ready-made policy.
func (n Node) StringRedacted(redact func(path []string, key string) bool) string {
	return string(Format{Redact: redact}.Append(nil, n))
}

// String renders n.
func (f Format) String(n Node) string { return string(f.Append(nil, n)) }

// Append appends the rendering of n to dst.
func (f Format) Append(dst []byte, n Node) []byte {
	var path []string
	if f.Redact != nil {
		path = make([]string, 0, 8)
	}
	return f.node(dst, &n, path, 0)
}

func (f Format) node(b []byte, n *Node, path []string, depth int) []byte {
	if f.Redact != nil {
		path = append(path, n.Tag)
	}
	b = append(b, '<')
	b = appendEscaped(b, n.Tag)
	for i := range n.Attrs {
		a := &n.Attrs[i]
		b = append(b, ' ')
		b = appendEscaped(b, a.Key)
		b = append(b, '=', '"')
		switch {
		case f.Redact != nil && f.Redact(path, a.Key):
			b = append(b, "<redacted>"...)
		case a.IsJID():
			// A decoded JID holds raw wire bytes: escape them like any
			// value when they need it (rarely; the copy is only then).
			start := len(b)
			b, _ = a.JID.AppendText(b)
			if needsEscape(b[start:]) {
				b = appendEscaped(b[:start], string(b[start:]))
			}
		default:
			b = appendEscaped(b, a.Value)
		}
		b = append(b, '"')
	}
	switch {
	case n.Children != nil:
		b = append(b, '>')
		if depth >= MaxDepth {
			b = append(b, "<!-- too deep -->"...)
		} else {
			for i := range n.Children {
				b = f.node(b, &n.Children[i], path, depth+1)
			}
		}
	case n.Content != nil:
		b = append(b, '>')
		limit := f.MaxContent
		if limit == 0 {
			limit = defaultMaxContent
		}
		switch {
		case f.Redact != nil && f.Redact(path, ""):
			b = append(b, "<!-- redacted "...)
			b = strconv.AppendInt(b, int64(len(n.Content)), 10)
			b = append(b, " bytes -->"...)
		case limit > 0 && len(n.Content) > limit:
			b = append(b, "<!-- "...)
			b = strconv.AppendInt(b, int64(len(n.Content)), 10)
			b = append(b, " bytes -->"...)
		case printable(n.Content):
			b = appendEscaped(b, string(n.Content))
		default:
			b = hex.AppendEncode(b, n.Content)
		}
	default:
		return append(b, '/', '>')
	}
	b = append(b, '<', '/')
	b = appendEscaped(b, n.Tag)
	return append(b, '>')
}

// needsEscape reports whether appendEscaped would change p.
func needsEscape(p []byte) bool {
	for _, c := range p {
		if c < 0x20 || c >= 0x7f || c == '&' || c == '<' || c == '>' || c == '"' {
			return true
		}
	}
	return false
}

func printable(p []byte) bool {
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		if r == utf8.RuneError && size <= 1 || r < 0x20 && r != '\n' && r != '\t' || r == 0x7F {
			return false
		}
		p = p[size:]
	}
	return true
}

// appendEscaped writes s with XML's special characters escaped and control
// characters or invalid UTF-8 as &#xNN; so a log line stays one line.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = appendCharRef(b, c)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '&':
			b = append(b, "&amp;"...)
		case c == '<':
			b = append(b, "&lt;"...)
		case c == '>':
			b = append(b, "&gt;"...)
		case c == '"':
			b = append(b, "&quot;"...)
		case c < 0x20 || c == 0x7F:
			b = appendCharRef(b, c)
		default:
			b = append(b, c)
		}
		i++
	}
	return b
}

func appendCharRef(b []byte, c byte) []byte {
	const digits = "0123456789abcdef"
	return append(b, '&', '#', 'x', digits[c>>4], digits[c&0xF], ';')
}

// sensitiveTags hold key material, signatures or pairing secrets in their
// content (see PROTOCOL.md §11–§15 and CHANGES-2026.md §6).
var sensitiveTags = map[string]bool{
	"device-identity": true,
	"identity":        true,
	"key":             true,
	"skey":            true,
	"signature":       true,
	"registration":    true,
	"link_code_pairing_wrapped_companion_ephemeral_pub": true,
	"link_code_pairing_wrapped_primary_ephemeral_pub":   true,
	"link_code_pairing_wrapped_key_bundle":              true,
	"companion_server_auth_key_pub":                     true,
	"companion_identity_public":                         true,
	"primary_identity_pub":                              true,
	"companion_nonce":                                   true,
	"pairing_handoff_proof":                             true,
	"encrypted_pairing_request":                         true,
	"webauthn_assertion":                                true,
	"credential_id":                                     true,
}

// sensitiveAttrs are attribute keys whose values are key material.
var sensitiveAttrs = map[string]bool{
	"companion_enc_static": true,
}

// RedactSensitive is a [Format.Redact] policy that hides the content of the
// stanzas that carry keys, signatures and pairing material, and attributes
// such as companion_enc_static.
func RedactSensitive(path []string, key string) bool {
	if key != "" {
		return sensitiveAttrs[key]
	}
	return len(path) > 0 && sensitiveTags[path[len(path)-1]]
}
