// Package binxmltest holds a corpus of realistic stanzas for tests and
// benchmarks of binxml and of code built on it (e.g. a comparison against
// other codecs in a separate benchmark module).
package binxmltest

import (
	"strconv"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
)

// Case is one named stanza.
type Case struct {
	Name string
	Node binxml.Node
}

// Corpus returns fresh copies of the realistic stanzas: pair-device with 6
// refs, pair-success, a read receipt, a message with a 1 KiB encrypted
// payload (and 4, 16 and 64 KiB ones, the sizes where copies dominate), a
// usync query for 100 JIDs, a pre-key upload of 50 keys and a 48-deep chain
// of nested lists. Contents are deterministic.
func Corpus() []Case {
	return []Case{
		{"pair-device", PairDevice()},
		{"pair-success", PairSuccess()},
		{"receipt", Receipt()},
		{"message-1k", Message(1024)},
		{"message-4k", Message(4 << 10)},
		{"message-16k", Message(16 << 10)},
		{"message-64k", Message(64 << 10)},
		{"usync-100", USync(100)},
		{"prekeys-50", PreKeyUpload(50)},
		{"nested-48", Nested(48)},
	}
}

// fill returns n deterministic pseudo-random bytes.
func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

var server = jid.ServerJID

// PairDevice is the server's pair-device IQ with 6 QR refs (E2E flow A).
func PairDevice() binxml.Node {
	refs := []string{
		"2@nbzXFfN//4CrSl95JirpNJHI10ZhxUUH", "2@lhahOyxfhjZ7x/j/AlTxetu3vJFvLkg1",
		"2@nAfNDfHxc/Qz9twqiW0dlNuclbXJnFMy", "2@v8vgJo/iy/AZec2kf0pWJU1/zS6qEYxc",
		"2@NAFL/s5/dwQZCrXDwFc1uNxCOjjz0pCH", "2@ZT4cV/VjBQ9gmH42hKJjI0e66p6QD3Qj",
	}
	children := make([]binxml.Node, len(refs))
	for i, r := range refs {
		children[i] = binxml.Node{Tag: "ref", Content: []byte(r)}
	}
	return binxml.Node{
		Tag: "iq",
		Attrs: []binxml.Attr{
			binxml.AJ("from", server), binxml.A("id", "srv-1-1"),
			binxml.A("type", "set"), binxml.A("xmlns", "md"),
		},
		Children: []binxml.Node{{Tag: "pair-device", Children: children}},
	}
}

// PairSuccess is the server's pair-success IQ (PROTOCOL.md §11.4).
func PairSuccess() binxml.Node {
	return binxml.Node{
		Tag: "iq",
		Attrs: []binxml.Attr{
			binxml.AJ("from", server), binxml.A("id", "srv-1-2"), binxml.A("type", "set"),
			binxml.A("xmlns", "md"), binxml.A("t", "1752021890"),
		},
		Children: []binxml.Node{{Tag: "pair-success", Children: []binxml.Node{
			{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", "android")}},
			{Tag: "device-identity", Content: fill(396, 1)},
			{Tag: "biz", Attrs: []binxml.Attr{binxml.A("name", "Walink Test Shop")}},
			{Tag: "device", Attrs: []binxml.Attr{
				binxml.AJ("jid", jid.NewAD("15551234567", 3, jid.DefaultUserServer)),
				binxml.AJ("lid", jid.NewAD("123456789012345", 3, jid.LIDServer)),
			}},
		}}},
	}
}

// Receipt is a delivery receipt from a companion device.
func Receipt() binxml.Node {
	return binxml.Node{
		Tag: "receipt",
		Attrs: []binxml.Attr{
			binxml.AJ("from", jid.NewAD("15551234567", 3, jid.DefaultUserServer)),
			binxml.A("id", "3EB0C431C26A1916E07A"),
			binxml.AJ("participant", jid.NewAD("123456789012345", 12, jid.LIDServer)),
			binxml.A("t", "1752021890"),
			binxml.A("type", "read"),
		},
	}
}

// Message is an encrypted 1:1 message with an n-byte payload.
func Message(n int) binxml.Node {
	return binxml.Node{
		Tag: "message",
		Attrs: []binxml.Attr{
			binxml.A("id", "3EB0C431C26A1916E07A"),
			binxml.AJ("to", jid.New("15557654321", jid.DefaultUserServer)),
			binxml.A("type", "text"),
		},
		Children: []binxml.Node{
			{Tag: "enc", Attrs: []binxml.Attr{binxml.A("v", "2"), binxml.A("type", "msg")}, Content: fill(n, 2)},
			{Tag: "device-identity", Content: fill(160, 3)},
		},
	}
}

// USync is a device list query for n phone-number users.
func USync(n int) binxml.Node {
	users := make([]binxml.Node, n)
	for i := range users {
		u := strconv.Itoa(15550000000 + i*7919)
		users[i] = binxml.Node{Tag: "user", Attrs: []binxml.Attr{binxml.AJ("jid", jid.New(u, jid.DefaultUserServer))}}
	}
	return binxml.Node{
		Tag: "iq",
		Attrs: []binxml.Attr{
			binxml.A("id", "51.8-12"), binxml.AJ("to", server),
			binxml.A("type", "get"), binxml.A("xmlns", "usync"),
		},
		Children: []binxml.Node{{
			Tag: "usync",
			Attrs: []binxml.Attr{
				binxml.A("context", "message"), binxml.A("index", "0"), binxml.A("last", "true"),
				binxml.A("mode", "query"), binxml.A("sid", "51.8-11"),
			},
			Children: []binxml.Node{
				{Tag: "query", Children: []binxml.Node{{Tag: "devices", Attrs: []binxml.Attr{binxml.A("version", "2")}}}},
				{Tag: "list", Children: users},
			},
		}},
	}
}

// PreKeyUpload is the encrypt IQ uploading n one-time pre-keys (§15).
func PreKeyUpload(n int) binxml.Node {
	keys := make([]binxml.Node, n)
	for i := range keys {
		id := i + 1
		keys[i] = binxml.Node{Tag: "key", Children: []binxml.Node{
			{Tag: "id", Content: []byte{byte(id >> 16), byte(id >> 8), byte(id)}},
			{Tag: "value", Content: fill(32, byte(i))},
		}}
	}
	return binxml.Node{
		Tag: "iq",
		Attrs: []binxml.Attr{
			binxml.A("id", "51.8-3"), binxml.AJ("to", server),
			binxml.A("type", "set"), binxml.A("xmlns", "encrypt"),
		},
		Children: []binxml.Node{
			{Tag: "registration", Content: []byte{0x0a, 0x0b, 0x0c, 0x0d}},
			{Tag: "type", Content: []byte{0x05}},
			{Tag: "identity", Content: fill(32, 200)},
			{Tag: "list", Children: keys},
			{Tag: "skey", Children: []binxml.Node{
				{Tag: "id", Content: []byte{0, 0, 1}},
				{Tag: "value", Content: fill(32, 201)},
				{Tag: "signature", Content: fill(64, 202)},
			}},
		},
	}
}

// Nested is a chain of depth nodes, each the only child of the previous.
func Nested(depth int) binxml.Node {
	n := binxml.Node{Tag: "leaf", Attrs: []binxml.Attr{binxml.A("id", "1")}}
	for i := depth - 1; i > 0; i-- {
		n = binxml.Node{Tag: "list", Attrs: []binxml.Attr{binxml.A("index", strconv.Itoa(i))}, Children: []binxml.Node{n}}
	}
	return n
}
