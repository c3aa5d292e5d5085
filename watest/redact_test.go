package watest

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/walinkdev/walink/binxml"
)

// redactPerNode is redact as it was, one allocation or more per node: the
// reference the arena version must match, nil and empty slices included.
func redactPerNode(n binxml.Node) binxml.Node {
	out := binxml.Node{Tag: n.Tag, Attrs: append([]binxml.Attr(nil), n.Attrs...)}
	switch {
	case n.Children != nil:
		kids := n.Children
		if len(kids) > 3*elideKeep {
			kids = append(append(kids[:elideKeep:elideKeep], binxml.Node{Tag: "elided", Attrs: []binxml.Attr{binxml.A("count", strconv.Itoa(len(kids)-2*elideKeep))}}), kids[len(kids)-elideKeep:]...)
		}
		out.Children = make([]binxml.Node, len(kids))
		for i, c := range kids {
			out.Children[i] = redactPerNode(c)
		}
	case n.Content != nil && secretTags[n.Tag]:
		out.Content = []byte(fmt.Sprintf("[redacted %d bytes]", len(n.Content)))
	case n.Content != nil:
		out.Content = append([]byte(nil), n.Content...)
	}
	return out
}

func TestRedactMatchesPerNode(t *testing.T) {
	many := func(k int) []binxml.Node {
		var kids []binxml.Node
		for i := range k {
			kids = append(kids, binxml.Node{Tag: "key", Children: []binxml.Node{
				{Tag: "id", Content: []byte{0, 0, byte(i)}},
				{Tag: "value", Content: make([]byte, 32)},
			}})
		}
		return kids
	}
	refs := make([]binxml.Node, 6)
	for i := range refs {
		refs[i] = binxml.Node{Tag: "ref", Content: []byte("2@" + strconv.Itoa(i))}
	}
	cases := []binxml.Node{
		{},
		{Tag: "a"},
		{Tag: "a", Attrs: []binxml.Attr{}},
		{Tag: "a", Children: []binxml.Node{}},
		{Tag: "a", Content: []byte{}},
		{Tag: "identity", Content: []byte{}},
		{Tag: "identity", Content: make([]byte, 1234567)},
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1"), binxml.A("type", "set")}, Children: []binxml.Node{{Tag: "pair-device", Children: refs}}},
		{Tag: "iq", Children: []binxml.Node{{Tag: "list", Children: many(812)}}},
		{Tag: "list", Children: many(12)},
		{Tag: "list", Children: many(13)},
		{Tag: "x", Children: []binxml.Node{{Tag: "y", Content: []byte("z")}, {}, {Tag: "signature", Content: []byte{1}}}},
	}
	for i, n := range cases {
		got, want := redact(n), redactPerNode(n)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("case %d: redact = %+v\nwant %+v", i, got, want)
		}
		if xmlString(got) != xmlString(want) {
			t.Errorf("case %d: xml %s\nwant %s", i, xmlString(got), xmlString(want))
		}
	}
	// The arena's pieces are capped: appending to one leaves the next.
	r := redact(cases[7])
	kids := r.Children[0].Children
	_ = append(kids[0].Content, 'X')
	if string(kids[1].Content) != "2@1" {
		t.Errorf("append to a ref's content changed the next: %q", kids[1].Content)
	}
	// Three allocations whatever the tree: nodes, attributes, content.
	if n := testing.AllocsPerRun(50, func() { redact(cases[7]) }); n > 3 {
		t.Errorf("redact of a pair-device: %v allocations, want 3", n)
	}
}
