package watest

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/walinkdev/walink/binxml"
)

// redactByNode is redact as it was before the copy was sized first (one
// allocation per attribute list, child list and content): the reference
// the sized copy must match exactly, nil and empty slices included.
func redactByNode(n binxml.Node) binxml.Node {
	out := binxml.Node{Tag: n.Tag, Attrs: append([]binxml.Attr(nil), n.Attrs...)}
	switch {
	case n.Children != nil:
		kids := n.Children
		if len(kids) > 3*elideKeep {
			kids = append(append(kids[:elideKeep:elideKeep], binxml.Node{Tag: "elided", Attrs: []binxml.Attr{binxml.A("count", strconv.Itoa(len(kids)-2*elideKeep))}}), kids[len(kids)-elideKeep:]...)
		}
		out.Children = make([]binxml.Node, len(kids))
		for i, c := range kids {
			out.Children[i] = redactByNode(c)
		}
	case n.Content != nil && secretTags[n.Tag]:
		out.Content = []byte(fmt.Sprintf("[redacted %d bytes]", len(n.Content)))
	case n.Content != nil:
		out.Content = append([]byte(nil), n.Content...)
	}
	return out
}

func TestRedactMatchesByNode(t *testing.T) {
	keys := make([]binxml.Node, 812)
	for i := range keys {
		keys[i] = binxml.Node{Tag: "key", Children: []binxml.Node{
			{Tag: "id", Content: []byte{byte(i >> 16), byte(i >> 8), byte(i)}},
			{Tag: "value", Content: make([]byte, 32)},
		}}
	}
	refs := make([]binxml.Node, 6)
	for i := range refs {
		refs[i] = binxml.Node{Tag: "ref", Content: []byte("2@" + strconv.Itoa(i))}
	}
	cases := []binxml.Node{
		{},
		{Tag: "ack"},
		{Tag: "a", Attrs: []binxml.Attr{}},
		{Tag: "a", Children: []binxml.Node{}},
		{Tag: "a", Content: []byte{}},
		{Tag: "value", Content: []byte{}},
		{Tag: "signature", Content: make([]byte, 64)},
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1"), binxml.A("type", "set")}, Children: []binxml.Node{{Tag: "pair-device", Children: refs}}},
		{Tag: "iq", Children: []binxml.Node{{Tag: "list", Children: keys}, {Tag: "registration", Content: []byte{0, 0, 0, 1}}}},
		{Tag: "iq", Children: []binxml.Node{{Tag: "list", Children: keys[:3*elideKeep]}, {Tag: "list", Children: keys[:3*elideKeep+1]}}},
		{Tag: "pair-success", Children: []binxml.Node{
			{Tag: "device-identity", Content: make([]byte, 150)},
			{Tag: "platform", Attrs: []binxml.Attr{binxml.A("name", "android")}, Children: []binxml.Node{}},
			{Tag: "x", Children: []binxml.Node{{Tag: "y", Content: []byte("z")}, {}}},
		}},
	}
	for i, n := range cases {
		got, want := redact(n), redactByNode(n)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("case %d: redact = %+v\nwant %+v", i, got, want)
		}
		if xmlString(got) != xmlString(want) {
			t.Errorf("case %d: XML %s, want %s", i, xmlString(got), xmlString(want))
		}
	}
	// The copy shares nothing with its input.
	n := cases[7]
	r := redact(n)
	r.Children[0].Children[0].Content[2] = 'X'
	r.Attrs[0].Value = "changed"
	if string(n.Children[0].Children[0].Content) != "2@0" || n.Attrs[0].Value != "1" {
		t.Fatal("redact's copy aliases its input")
	}
}

func TestRedactAllocs(t *testing.T) {
	refs := make([]binxml.Node, 6)
	for i := range refs {
		refs[i] = binxml.Node{Tag: "ref", Content: make([]byte, refLen)}
	}
	n := serverIQ("1", "set", "md", nil, binxml.Node{Tag: "pair-device", Children: refs})
	if a := testing.AllocsPerRun(100, func() { _ = redact(n) }); a > 3 {
		t.Fatalf("redact of a pair-device: %v allocations, want ≤ 3", a)
	}
}
