package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
)

// ErrMalformed is wrapped by every parse error of this package.
var ErrMalformed = errors.New("engine: malformed stanza")

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

var server = binxml.AJ("to", jid.ServerJID)

// IQ builds <iq id=… xmlns=… type=… to="s.whatsapp.net">children</iq>.
func IQ(id, xmlns, typ string, children ...binxml.Node) binxml.Node {
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", id), binxml.A("xmlns", xmlns), binxml.A("type", typ), server}}
	if len(children) > 0 {
		n.Children = children
	}
	return n
}

// IQResult answers a server IQ: <iq id=… to="s.whatsapp.net" type="result">.
func IQResult(id string, children ...binxml.Node) binxml.Node {
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", id), server, binxml.A("type", "result")}}
	if len(children) > 0 {
		n.Children = children
	}
	return n
}

// IQError refuses a server IQ (PROTOCOL.md §11.6):
// <iq id=… to="s.whatsapp.net" type="error"><error code=C text=T/></iq>.
func IQError(id string, code int, text string) binxml.Node {
	return binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", id), server, binxml.A("type", "error")},
		Children: []binxml.Node{{Tag: "error", Attrs: []binxml.Attr{binxml.A("code", strconv.Itoa(code)), binxml.A("text", text)}}}}
}

// Ack acknowledges a notification:
// <ack class="notification" id=… to=<from> type=<notification type>/>.
func Ack(n binxml.Node) binxml.Node {
	to, ok := n.AttrJID("from")
	if !ok {
		to = jid.ServerJID
	}
	attrs := []binxml.Attr{binxml.A("class", n.Tag), binxml.A("id", n.Attr("id")), binxml.AJ("to", to)}
	if t := n.Attr("type"); t != "" {
		attrs = append(attrs, binxml.A("type", t))
	}
	return binxml.Node{Tag: "ack", Attrs: attrs}
}

// Ping is the keepalive: <iq id xmlns="w:p" type="get" to=server/>, no child
// (PROTOCOL.md §17).
func Ping(id string) binxml.Node { return IQ(id, "w:p", "get") }

// IsServerPing reports a server-initiated ping (xmlns="urn:xmpp:ping").
func IsServerPing(n binxml.Node) bool {
	return n.Tag == "iq" && n.Attr("type") == "get" && n.Attr("xmlns") == "urn:xmpp:ping"
}

// Pong answers a server ping; the id is echoed only if the ping had one.
func Pong(ping binxml.Node) binxml.Node {
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{server, binxml.A("type", "result")}}
	if id := ping.Attr("id"); id != "" {
		n.Attrs = append(n.Attrs, binxml.A("id", id))
	}
	return n
}

// PairDeviceSign is the reply to pair-success:
// <iq type="result" id=…><pair-device-sign><device-identity key-index=K>reply</…></…></iq>.
func PairDeviceSign(id string, keyIndex uint32, reply []byte) binxml.Node {
	return IQResult(id, binxml.Node{Tag: "pair-device-sign", Children: []binxml.Node{{
		Tag: "device-identity", Attrs: []binxml.Attr{binxml.A("key-index", strconv.FormatUint(uint64(keyIndex), 10))}, Content: reply,
	}}})
}

// PreKeyCount asks how many pre-keys the server holds:
// <iq xmlns="encrypt" type="get"><count/></iq>.
func PreKeyCount(id string) binxml.Node { return IQ(id, "encrypt", "get", binxml.Node{Tag: "count"}) }

// ParsePreKeyCount reads <count value=N/> from the result.
func ParsePreKeyCount(n binxml.Node) (int, error) {
	c, ok := n.Child("count")
	if !ok {
		return 0, malformed("pre-key count without <count>")
	}
	v, err := strconv.Atoi(c.Attr("value"))
	if err != nil || v < 0 {
		return 0, malformed("pre-key count value")
	}
	return v, nil
}

// PreKeyUpload uploads pre-keys (PROTOCOL.md §15), children in this order:
// <registration>4 bytes BE</> <type>05</> <identity>32</> <list><key><id>3</><value>32</></key>…</list>
// <skey><id>3</><value>32</><signature>64</></skey>.
//
// The keys' children, ids and values are carved out of three allocations
// for the whole batch rather than three small ones per key: a link
// uploads 812 keys, and small garbage made by thousands while clients
// link fills spans that the clients' long-lived objects then keep.
func PreKeyUpload(id string, regID uint32, identity keys.PublicKey, pks []keys.PreKey, spk keys.SignedPreKey) binxml.Node {
	list := make([]binxml.Node, len(pks))
	kids := make([]binxml.Node, 2*len(pks))
	const idLen = 3
	raw := make([]byte, (idLen+keys.Size)*len(pks))
	for i, pk := range pks {
		kv := raw[i*(idLen+keys.Size) : (i+1)*(idLen+keys.Size) : (i+1)*(idLen+keys.Size)]
		kv[0], kv[1], kv[2] = byte(pk.ID>>16), byte(pk.ID>>8), byte(pk.ID) // keys.PreKeyIDBytes
		pub := pk.Public.Array()
		copy(kv[idLen:], pub[:])
		kids[2*i] = binxml.Node{Tag: "id", Content: kv[:idLen:idLen]}
		kids[2*i+1] = binxml.Node{Tag: "value", Content: kv[idLen:]}
		list[i] = binxml.Node{Tag: "key", Children: kids[2*i : 2*i+2 : 2*i+2]}
	}
	reg := binary.BigEndian.AppendUint32(nil, regID)
	return IQ(id, "encrypt", "set",
		binxml.Node{Tag: "registration", Content: reg},
		binxml.Node{Tag: "type", Content: []byte{keys.DJBType}},
		binxml.Node{Tag: "identity", Content: identity.Bytes()},
		binxml.Node{Tag: "list", Children: list},
		binxml.Node{Tag: "skey", Children: []binxml.Node{
			{Tag: "id", Content: keys.PreKeyIDBytes(spk.ID)},
			{Tag: "value", Content: spk.Public.Bytes()},
			{Tag: "signature", Content: spk.Signature[:]},
		}},
	)
}

// SetActive leaves passive mode: <iq xmlns="passive" type="set"><active/></iq>.
func SetActive(id string) binxml.Node { return IQ(id, "passive", "set", binxml.Node{Tag: "active"}) }

// RemoveCompanionDevice is the logout request (PROTOCOL.md §19).
func RemoveCompanionDevice(id string, own jid.JID) binxml.Node {
	return IQ(id, "md", "set", binxml.Node{Tag: "remove-companion-device",
		Attrs: []binxml.Attr{binxml.AJ("jid", own), binxml.A("reason", "user_initiated")}})
}

// IQErrorInfo is the <error> of a type="error" IQ response.
type IQErrorInfo struct {
	Code    int
	Text    string
	Backoff time.Duration // from the optional backoff attribute (seconds)
}

// ParseIQError reports whether n is an error response and what it says.
func ParseIQError(n binxml.Node) (IQErrorInfo, bool) {
	if n.Attr("type") != "error" {
		return IQErrorInfo{}, false
	}
	e, _ := n.Child("error")
	code, _ := strconv.Atoi(e.Attr("code"))
	info := IQErrorInfo{Code: code, Text: e.Attr("text")}
	if b, err := strconv.Atoi(e.Attr("backoff")); err == nil && b > 0 {
		info.Backoff = time.Duration(b) * time.Second
	}
	return info, true
}

// IsFromServer reports whether the stanza comes from the bare server JID
// (absent "from" counts as the server: the stream itself).
// A "from" that is present but not a valid JID is not the server.
func IsFromServer(n binxml.Node) bool {
	if _, present := n.AttrOK("from"); !present {
		return true
	}
	from, ok := n.AttrJID("from")
	return ok && from == jid.ServerJID
}

// ParsePairDevice reads the refs of
// <iq type="set" xmlns="md"><pair-device><ref>R1</ref>…</pair-device></iq>.
func ParsePairDevice(n binxml.Node) ([]string, error) {
	pd, ok := n.Child("pair-device")
	if !ok {
		return nil, malformed("no <pair-device>")
	}
	var refs []string
	for _, c := range pd.Children {
		if c.Tag == "ref" && len(c.Content) > 0 {
			refs = append(refs, string(c.Content))
		}
	}
	if len(refs) == 0 {
		return nil, malformed("pair-device without refs")
	}
	return refs, nil
}

// PairSuccess is the content of <iq><pair-success> (PROTOCOL.md §11.4).
type PairSuccess struct {
	IQID           string
	DeviceIdentity []byte // serialized ADVSignedDeviceIdentityHMAC
	ID, LID        jid.JID
	Platform       string
	BusinessName   string
	ServerTime     time.Time // from the iq's t; zero when absent
}

// ParsePairSuccess reads a pair-success IQ.
func ParsePairSuccess(n binxml.Node) (PairSuccess, error) {
	ps, ok := n.Child("pair-success")
	if !ok {
		return PairSuccess{}, malformed("no <pair-success>")
	}
	out := PairSuccess{IQID: n.Attr("id")}
	if t, err := strconv.ParseInt(n.Attr("t"), 10, 64); err == nil && t > 0 {
		out.ServerTime = time.Unix(t, 0)
	}
	di, ok := ps.Child("device-identity")
	if !ok || len(di.Content) == 0 {
		return out, malformed("pair-success without device-identity")
	}
	out.DeviceIdentity = di.Content
	dev, ok := ps.Child("device")
	if !ok {
		return out, malformed("pair-success without device")
	}
	// AttrJID refuses JIDs with junk in them; what is left must be an
	// account's device (never the phone, device 0) and, if present, a LID.
	if out.ID, ok = dev.AttrJID("jid"); !ok || out.ID.User == "" || out.ID.Device == 0 || !out.ID.IsUserServer() {
		return PairSuccess{IQID: out.IQID}, malformed("pair-success device jid")
	}
	if _, present := dev.AttrOK("lid"); present {
		if out.LID, ok = dev.AttrJID("lid"); !ok || out.LID.User == "" ||
			(out.LID.Server != jid.LIDServer && out.LID.Server != jid.HostedLIDServer) {
			return PairSuccess{IQID: out.IQID, ID: out.ID}, malformed("pair-success device lid")
		}
	}
	// Names are stored and shown: text only.
	if p, ok := ps.Child("platform"); ok {
		if out.Platform, ok = text(p, "name"); !ok {
			return PairSuccess{IQID: out.IQID, ID: out.ID, LID: out.LID}, malformed("pair-success platform name is not UTF-8 text")
		}
	}
	if b, ok := ps.Child("biz"); ok {
		if out.BusinessName, ok = text(b, "name"); !ok {
			return PairSuccess{IQID: out.IQID, ID: out.ID, LID: out.LID}, malformed("pair-success business name is not UTF-8 text")
		}
	}
	return out, nil
}

// maxText bounds a name taken from a stanza into the session.
const maxText = 1024

// text returns a string attribute that is valid UTF-8 without control
// characters and at most maxText bytes; ok is false otherwise. A typed JID
// attribute is not text.
func text(n binxml.Node, key string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Key != key {
			continue
		}
		if a.IsJID() || len(a.Value) > maxText || !utf8.ValidString(a.Value) {
			return "", false
		}
		for _, r := range a.Value {
			if unicode.IsControl(r) {
				return "", false
			}
		}
		return a.Value, true
	}
	return "", true
}

// Failure is a <failure> received instead of <success> (PROTOCOL.md §18).
type Failure struct {
	Reason   int
	Location string
	Message  string
	// Temporary bans (402).
	BanCode   int
	BanExpire time.Duration
}

// ParseFailure reads a <failure reason=… …/>.
func ParseFailure(n binxml.Node) Failure {
	f := Failure{Location: n.Attr("location"), Message: n.Attr("message")}
	f.Reason, _ = strconv.Atoi(n.Attr("reason"))
	if f.Message == "" {
		f.Message = n.Attr("logout_message_header")
	}
	f.BanCode, _ = strconv.Atoi(n.Attr("code"))
	if e, err := strconv.Atoi(n.Attr("expire")); err == nil && e > 0 {
		f.BanExpire = time.Duration(e) * time.Second
	}
	return f
}

// LoggedOut reports whether the failure means the device is gone and the
// local session must be cleared (401, 403, 406).
func (f Failure) LoggedOut() bool { return f.Reason == 401 || f.Reason == 403 || f.Reason == 406 }

// StreamKind classifies a <stream:error>.
type StreamKind int

// Stream error kinds (PROTOCOL.md §18).
const (
	StreamReconnect     StreamKind = iota // 503 and anything unknown: reconnect with backoff
	StreamRestart                         // 515: reconnect now (expected after pairing)
	StreamDeviceRemoved                   // 401 / device_removed / 516: logged out
	StreamReplaced                        // conflict replaced / 409: do not reconnect
	StreamRateLimited                     // 429: reconnect with extra backoff
)

// StreamError is a classified <stream:error>.
type StreamError struct {
	Code int
	Kind StreamKind
	Text string // conflict type or first child's tag, for logs
}

// ParseStreamError classifies a <stream:error code=C>[child]</stream:error>.
func ParseStreamError(n binxml.Node) StreamError {
	se := StreamError{}
	se.Code, _ = strconv.Atoi(n.Attr("code"))
	conflict, hasConflict := n.Child("conflict")
	if hasConflict {
		se.Text = conflict.Attr("type")
	} else if len(n.Children) > 0 {
		se.Text = n.Children[0].Tag
	}
	switch {
	case se.Code == 515:
		se.Kind = StreamRestart
	case hasConflict && se.Text == "device_removed", se.Code == 516, se.Code == 401 && !hasConflict:
		se.Kind = StreamDeviceRemoved
	case hasConflict, se.Code == 409:
		se.Kind = StreamReplaced
	case se.Code == 429:
		se.Kind = StreamRateLimited
	default:
		se.Kind = StreamReconnect
	}
	return se
}

// Success is the <success> stanza that ends a login (PROTOCOL.md §13).
type Success struct {
	LID        jid.JID
	ServerTime time.Time
	Location   string
}

// ParseSuccess reads the attributes of <success>.
func ParseSuccess(n binxml.Node) Success {
	s := Success{Location: n.Attr("location")}
	s.LID, _ = n.AttrJID("lid")
	if t, err := strconv.ParseInt(n.Attr("t"), 10, 64); err == nil && t > 0 {
		s.ServerTime = time.Unix(t, 0)
	}
	return s
}

// IsRegRefresh reports a companion_reg_refresh notification that carries
// one of its two known children (CHANGES-2026.md §1); others are ignored.
func IsRegRefresh(n binxml.Node) bool {
	if n.Tag != "notification" || n.Attr("type") != "companion_reg_refresh" {
		return false
	}
	_, a := n.Child("companion_reg_refresh")
	_, b := n.Child("pair-device-rotate-qr")
	return a || b
}
