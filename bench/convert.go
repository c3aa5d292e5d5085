package bench

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
)

// ToWhatsmeow converts a walink node to the whatsmeow node that a whatsmeow
// user would build for the same stanza: JID attributes as types.JID, other
// attributes as strings, children as []Node, bytes as []byte.
func ToWhatsmeow(n binxml.Node) waBinary.Node {
	out := waBinary.Node{Tag: n.Tag}
	if len(n.Attrs) > 0 {
		out.Attrs = make(waBinary.Attrs, len(n.Attrs))
		for _, a := range n.Attrs {
			if a.IsJID() {
				out.Attrs[a.Key] = wmJID(a.JID)
			} else {
				out.Attrs[a.Key] = a.Value
			}
		}
	}
	switch {
	case n.Children != nil:
		children := make([]waBinary.Node, len(n.Children))
		for i, c := range n.Children {
			children[i] = ToWhatsmeow(c)
		}
		out.Content = children
	case n.Content != nil:
		out.Content = n.Content
	}
	return out
}

// wmJID relies on both JID types having the same fields, so a change in
// either breaks the build instead of silently converting wrong.
func wmJID(j jid.JID) types.JID { return types.JID(j) }
