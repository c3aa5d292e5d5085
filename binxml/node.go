package binxml

import "github.com/walinkdev/walink/jid"

// Attr is one attribute. The value is a JID when JID.Server != "", else
// the string Value.
type Attr struct {
	Key   string
	Value string
	JID   jid.JID
}

// A returns a string attribute.
func A(key, value string) Attr { return Attr{Key: key, Value: value} }

// AJ returns a JID attribute (encoded as JID_PAIR / AD_JID on the wire).
func AJ(key string, j jid.JID) Attr { return Attr{Key: key, JID: j} }

// IsJID reports whether the value is a JID.
func (a Attr) IsJID() bool { return a.JID.Server != "" }

// String returns the value as text (a JID formatted).
func (a Attr) String() string {
	if a.IsJID() {
		return a.JID.String()
	}
	return a.Value
}

// Node is one binary-XML stanza. Content is the child list when Children
// is non-nil, else the bytes in Content when non-nil, else there is none.
type Node struct {
	Tag      string
	Attrs    []Attr
	Children []Node
	Content  []byte
}

// Attr returns the attribute's value as text ("" if absent).
func (n Node) Attr(key string) string { v, _ := n.AttrOK(key); return v }

// AttrOK returns the attribute's value as text and whether it is present.
func (n Node) AttrOK(key string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Key == key {
			return a.String(), true
		}
	}
	return "", false
}

// AttrJID returns the attribute as a JID, parsing a string value if needed.
// It reports false for a JID that [jid.JID.Validate] refuses: the wire's
// JID forms carry raw user and server bytes, which a hostile peer can fill
// with junk (invalid UTF-8, '@', control characters) that Parse would never
// return.
func (n Node) AttrJID(key string) (jid.JID, bool) {
	for _, a := range n.Attrs {
		if a.Key == key {
			if a.IsJID() {
				if a.JID.Validate() != nil {
					return jid.JID{}, false
				}
				return a.JID, true
			}
			j, err := jid.Parse(a.Value)
			return j, err == nil
		}
	}
	return jid.JID{}, false
}

// Child returns the first child with the tag.
func (n Node) Child(tag string) (Node, bool) {
	for _, c := range n.Children {
		if c.Tag == tag {
			return c, true
		}
	}
	return Node{}, false
}
