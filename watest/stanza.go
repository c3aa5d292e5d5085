package watest

import (
	"strconv"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
)

// Stanza builders. Every address attribute is JID-typed (binxml.AJ):
// clients that only read typed JIDs ignore a stanza whose from is a string
// (PROTOCOL.md §20.8).

func fromServer() binxml.Attr { return binxml.AJ("from", jid.ServerJID) }

// iqResult is <iq from="s.whatsapp.net" id=… type="result">children</iq>.
func iqResult(id string, children ...binxml.Node) binxml.Node {
	n := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{fromServer(), binxml.A("id", id), binxml.A("type", "result")}}
	if len(children) > 0 {
		n.Children = children
	}
	return n
}

// iqError is <iq … type="error"><error code text [extra]/></iq>.
func iqError(id string, code int, text string, extra ...binxml.Attr) binxml.Node {
	e := binxml.Node{Tag: "error", Attrs: append([]binxml.Attr{binxml.A("code", strconv.Itoa(code)), binxml.A("text", text)}, extra...)}
	return binxml.Node{
		Tag:      "iq",
		Attrs:    []binxml.Attr{fromServer(), binxml.A("id", id), binxml.A("type", "error")},
		Children: []binxml.Node{e},
	}
}

// serverIQ is a server-initiated <iq from=… id=… type=… xmlns=…>.
func serverIQ(id, typ, xmlns string, extra []binxml.Attr, children ...binxml.Node) binxml.Node {
	attrs := append([]binxml.Attr{fromServer(), binxml.A("id", id), binxml.A("type", typ), binxml.A("xmlns", xmlns)}, extra...)
	n := binxml.Node{Tag: "iq", Attrs: attrs}
	if len(children) > 0 {
		n.Children = children
	}
	return n
}

// notification is <notification from=… id=… t=… type=…>children</notification>.
func notification(id, t, typ string, children ...binxml.Node) binxml.Node {
	return binxml.Node{
		Tag:      "notification",
		Attrs:    []binxml.Attr{fromServer(), binxml.A("id", id), binxml.A("t", t), binxml.A("type", typ)},
		Children: children,
	}
}

func bytesNode(tag string, content []byte) binxml.Node {
	return binxml.Node{Tag: tag, Content: append([]byte{}, content...)}
}

// streamError is <stream:error code=…/>.
func streamError(code string) binxml.Node {
	return binxml.Node{Tag: "stream:error", Attrs: []binxml.Attr{binxml.A("code", code)}}
}

// deviceRemoved is what a companion removed by its phone receives.
func deviceRemoved() binxml.Node {
	n := streamError("401")
	n.Children = []binxml.Node{{Tag: "conflict", Attrs: []binxml.Attr{binxml.A("type", "device_removed")}}}
	return n
}

// replaced is what a connection gets when another one logs in as the same
// device.
func replaced() binxml.Node {
	return binxml.Node{Tag: "stream:error", Children: []binxml.Node{{Tag: "conflict", Attrs: []binxml.Attr{binxml.A("type", "replaced")}}}}
}

// failure is <failure location="frc" reason=…/>, sent instead of success.
func failure(reason int) binxml.Node {
	return binxml.Node{Tag: "failure", Attrs: []binxml.Attr{binxml.A("location", "frc"), binxml.A("reason", strconv.Itoa(reason))}}
}

// firstChild returns the first child node, if any.
func firstChild(n binxml.Node) (binxml.Node, bool) {
	if len(n.Children) == 0 {
		return binxml.Node{}, false
	}
	return n.Children[0], true
}

func childContent(n binxml.Node, tag string) []byte {
	c, ok := n.Child(tag)
	if !ok {
		return nil
	}
	return c.Content
}
