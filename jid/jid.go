// CONTRACT STUB — the binxml/jid helper replaces the bodies; signatures are fixed.
package jid

import "errors"

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

// Parse parses "server", "user@server", "user:device@server",
// "user.agent:device@server". Invalid strings return an error wrapping
// ErrInvalid, never a panic.
func Parse(s string) (JID, error) { panic("unimplemented") }

// String formats the JID; Parse(j.String()) == j for valid JIDs.
func (j JID) String() string { panic("unimplemented") }

// IsEmpty reports whether j is the zero JID.
func (j JID) IsEmpty() bool { return j == JID{} }

// ToNonAD returns j without agent and device (device 0).
func (j JID) ToNonAD() JID { return JID{User: j.User, Integrator: j.Integrator, Server: j.Server} }
