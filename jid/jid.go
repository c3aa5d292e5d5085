package jid

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Servers.
const (
	DefaultUserServer = "s.whatsapp.net"
	LIDServer         = "lid"
	GroupServer       = "g.us"
	BroadcastServer   = "broadcast"
	NewsletterServer  = "newsletter"
	LegacyUserServer  = "c.us"
	HostedServer      = "hosted"
	HostedLIDServer   = "hosted.lid"
	MessengerServer   = "msgr"
	InteropServer     = "interop"
	BotServer         = "bot"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("jid: invalid")

// ParseError describes why a string is not a JID. It wraps [ErrInvalid].
type ParseError struct {
	Input  string // the rejected input, truncated to 64 bytes
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("jid: invalid %q: %s", e.Input, e.Reason)
}

// Unwrap returns [ErrInvalid].
func (e *ParseError) Unwrap() error { return ErrInvalid }

// JID is a WhatsApp address. The zero value is the empty JID. JIDs are
// comparable with ==.
type JID struct {
	User       string
	RawAgent   uint8  // legacy agent (user.agent:device@server); 0 normally
	Device     uint16 // 0 = primary phone; companions >= 1
	Integrator uint16 // interop JIDs only
	Server     string
}

// ServerJID is the bare server address s.whatsapp.net.
var ServerJID = JID{Server: DefaultUserServer}

// New returns user@server.
func New(user, server string) JID { return JID{User: user, Server: server} }

// NewAD returns user:device@server (agent 0).
func NewAD(user string, device uint16, server string) JID {
	return JID{User: user, Device: device, Server: server}
}

// maxInput bounds Parse's work; real JIDs are well under 100 bytes.
const maxInput = 512

func parseErr(s, reason string) error {
	if len(s) > 64 {
		s = s[:64]
	}
	return &ParseError{Input: s, Reason: reason}
}

// Parse parses "server", "user@server", "user:device@server",
// "user.agent:device@server" (and "integrator-user:device@interop").
// Invalid strings return an error wrapping ErrInvalid, never a panic.
//
// Users consist of ASCII letters, digits, '-' and '_'; servers of lower-case
// ASCII letters, digits, '.', '-' and '_', starting and ending with a letter
// or digit. Device numbers are decimal 0–65535, agents 0–255.
func Parse(s string) (JID, error) {
	switch {
	case s == "":
		return JID{}, parseErr(s, "empty")
	case len(s) > maxInput:
		return JID{}, parseErr(s, "too long")
	case !utf8.ValidString(s):
		return JID{}, parseErr(s, "not valid UTF-8")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		if err := checkServer(s); err != "" {
			return JID{}, parseErr(s, err)
		}
		return JID{Server: s}, nil
	}
	local, server := s[:at], s[at+1:]
	if strings.IndexByte(server, '@') >= 0 {
		return JID{}, parseErr(s, "more than one '@'")
	}
	if err := checkServer(server); err != "" {
		return JID{}, parseErr(s, err)
	}
	j := JID{Server: server}
	if local == "" {
		// "@s.whatsapp.net" is how Baileys prints a bare server.
		return j, nil
	}
	user := local
	if i := strings.IndexByte(local, ':'); i >= 0 {
		dev := local[i+1:]
		user = local[:i]
		d, err := parseUint(dev, 16)
		if err != "" {
			return JID{}, parseErr(s, "device "+err)
		}
		j.Device = uint16(d)
	}
	if i := strings.IndexByte(user, '.'); i >= 0 {
		a, err := parseUint(user[i+1:], 8)
		if err != "" {
			return JID{}, parseErr(s, "agent "+err)
		}
		j.RawAgent = uint8(a)
		user = user[:i]
	}
	if server == InteropServer {
		if i := strings.IndexByte(user, '-'); i >= 0 {
			n, err := parseUint(user[:i], 16)
			if err != "" {
				return JID{}, parseErr(s, "integrator "+err)
			}
			j.Integrator = uint16(n)
			user = user[i+1:]
		}
	}
	if user == "" {
		return JID{}, parseErr(s, "empty user")
	}
	for i := 0; i < len(user); i++ {
		if !userByte(user[i]) {
			return JID{}, parseErr(s, "invalid character in user")
		}
	}
	j.User = user
	return j, nil
}

func userByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
}

// checkServer returns "" if s is a syntactically valid server name, else
// the reason it is not.
func checkServer(s string) string {
	if s == "" {
		return "empty server"
	}
	alnum := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' }
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '.' && c != '-' && c != '_' {
			return "invalid character in server"
		}
	}
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return "server must start and end with a letter or digit"
	}
	return ""
}

// parseUint parses a plain decimal number (no sign, at most 5 digits).
func parseUint(s string, bits int) (uint64, string) {
	if s == "" {
		return 0, "is empty"
	}
	if len(s) > 5 {
		return 0, "out of range"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, "is not a decimal number"
		}
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, "out of range"
	}
	return n, ""
}

// Validate reports whether j is a JID that [Parse] could have produced:
// nil when Parse(j.String()) == j, else an error wrapping [ErrInvalid].
// Use it on JIDs that did not come from Parse, such as those a binary
// stanza carries as raw user and server bytes: the wire format lets a
// hostile peer put anything there (invalid UTF-8, '@', ':', control
// characters, an empty server). The empty JID is invalid.
func (j JID) Validate() error {
	if j.IsEmpty() {
		return parseErr("", "empty")
	}
	if len(j.User)+len(j.Server) > maxInput {
		return parseErr(j.User, "too long")
	}
	s := j.String()
	p, err := Parse(s)
	if err != nil {
		return err
	}
	if p != j {
		return parseErr(s, "fields do not survive formatting")
	}
	return nil
}

// String formats the JID; Parse(j.String()) == j for valid JIDs.
func (j JID) String() string {
	if j.User == "" && j.Device == 0 && j.RawAgent == 0 && j.Integrator == 0 {
		return j.Server
	}
	return string(j.appendTo(make([]byte, 0, len(j.User)+len(j.Server)+16), j.RawAgent > 0))
}

// ADString formats the JID with its device always present
// ("15551234567:0@s.whatsapp.net"), as some stanzas expect.
func (j JID) ADString() string {
	return string(j.appendTo(make([]byte, 0, len(j.User)+len(j.Server)+16), true))
}

// AppendText appends j.String() to b without an intermediate string.
func (j JID) AppendText(b []byte) ([]byte, error) {
	if j.User == "" && j.Device == 0 && j.RawAgent == 0 && j.Integrator == 0 {
		return append(b, j.Server...), nil
	}
	return j.appendTo(b, j.RawAgent > 0), nil
}

func (j JID) appendTo(b []byte, forceDevice bool) []byte {
	if j.Server == InteropServer && (j.Integrator != 0 || strings.IndexByte(j.User, '-') >= 0) {
		b = strconv.AppendUint(b, uint64(j.Integrator), 10)
		b = append(b, '-')
	}
	b = append(b, j.User...)
	if j.RawAgent > 0 {
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(j.RawAgent), 10)
	}
	if j.Device > 0 || forceDevice {
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(j.Device), 10)
	}
	b = append(b, '@')
	return append(b, j.Server...)
}

// MarshalText implements encoding.TextMarshaler.
func (j JID) MarshalText() ([]byte, error) { return j.AppendText(nil) }

// UnmarshalText implements encoding.TextUnmarshaler. Empty text gives the
// empty JID, so an absent JSON field round-trips.
func (j *JID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*j = JID{}
		return nil
	}
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*j = p
	return nil
}

// IsEmpty reports whether j is the zero JID.
func (j JID) IsEmpty() bool { return j == JID{} }

// IsServer reports whether j is a bare server address (no user).
func (j JID) IsServer() bool { return j.User == "" && j.Server != "" }

// IsAD reports whether j names one device ("user:device@server" with a
// device or legacy agent), as opposed to the whole account.
func (j JID) IsAD() bool { return j.Device > 0 || j.RawAgent > 0 }

// ToNonAD returns j without agent and device (device 0).
func (j JID) ToNonAD() JID { return JID{User: j.User, Integrator: j.Integrator, Server: j.Server} }

// WithDevice returns j with the device set (and the legacy agent kept).
func (j JID) WithDevice(device uint16) JID { j.Device = device; return j }

// IsUserServer reports whether j is on a server whose users are accounts
// with devices: phone numbers, LIDs and their hosted variants.
func (j JID) IsUserServer() bool {
	switch j.Server {
	case DefaultUserServer, LIDServer, HostedServer, HostedLIDServer:
		return true
	}
	return false
}

// KnownServer reports whether s is one of the server constants above.
func KnownServer(s string) bool {
	switch s {
	case DefaultUserServer, LIDServer, GroupServer, BroadcastServer, NewsletterServer,
		LegacyUserServer, HostedServer, HostedLIDServer, MessengerServer, InteropServer, BotServer:
		return true
	}
	return false
}
