package watest

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/walinkdev/walink/binxml"
)

// redactRef is redact as it was written first, a copy per piece: the
// slab version must give the same tree.
func redactRef(n binxml.Node) binxml.Node {
	out := binxml.Node{Tag: n.Tag, Attrs: append([]binxml.Attr(nil), n.Attrs...)}
	switch {
	case n.Children != nil:
		kids := n.Children
		if len(kids) > 3*elideKeep {
			kids = append(append(kids[:elideKeep:elideKeep], binxml.Node{Tag: "elided", Attrs: []binxml.Attr{binxml.A("count", strconv.Itoa(len(kids)-2*elideKeep))}}), kids[len(kids)-elideKeep:]...)
		}
		out.Children = make([]binxml.Node, len(kids))
		for i, c := range kids {
			out.Children[i] = redactRef(c)
		}
	case n.Content != nil && secretTags[n.Tag]:
		out.Content = []byte(fmt.Sprintf("[redacted %d bytes]", len(n.Content)))
	case n.Content != nil:
		out.Content = append([]byte(nil), n.Content...)
	}
	return out
}

func TestRedactSlabs(t *testing.T) {
	var keys []binxml.Node
	for i := range 20 {
		keys = append(keys, binxml.Node{Tag: "key", Children: []binxml.Node{{Tag: "id", Content: []byte{byte(i)}}, {Tag: "value", Content: make([]byte, 32)}}})
	}
	refs := []binxml.Node{{Tag: "ref", Content: []byte("2@abc")}, {Tag: "ref", Content: []byte{}}, {Tag: "ref"}}
	for _, n := range []binxml.Node{
		{Tag: "iq"},
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1")}, Children: []binxml.Node{}},
		serverIQ("1", "set", "md", nil, binxml.Node{Tag: "pair-device", Children: refs}),
		{Tag: "iq", Attrs: []binxml.Attr{binxml.A("type", "set")}, Children: []binxml.Node{{Tag: "list", Children: keys}, {Tag: "identity", Content: make([]byte, 32)}}},
	} {
		got, want := redact(n), redactRef(n)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("redact %s:\n got %#v\nwant %#v", xmlString(n), got, want)
		}
		// Appending to one piece leaves the next alone.
		if len(got.Children) > 1 {
			before := xmlString(got)
			got.Children[0].Attrs = append(got.Children[0].Attrs, binxml.A("x", "y"))
			got.Children[0].Content = append(got.Children[0].Content, 'z')
			got.Children[0] = binxml.Node{}
			if s := xmlString(got.Children[1]); s != xmlString(redactRef(n).Children[1]) {
				t.Errorf("an append ran into the next piece: %s (was %s)", s, before)
			}
		}
	}
}

// TestRedactsSame: a node redactsSame accepts logs the same, kept as it is,
// as its redacted copy; the others are those redact changes.
func TestRedactsSame(t *testing.T) {
	var keys []binxml.Node
	for i := range 3*elideKeep + 1 {
		keys = append(keys, binxml.Node{Tag: "key", Children: []binxml.Node{{Tag: "id", Content: []byte{byte(i)}}}})
	}
	refs := []binxml.Node{{Tag: "ref", Content: []byte("2@abc")}, {Tag: "ref", Content: []byte("2@def")}}
	for _, tc := range []struct {
		n    binxml.Node
		same bool
	}{
		{binxml.Node{Tag: "iq"}, true},
		{binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1")}, Children: []binxml.Node{}}, true},
		{serverIQ("1", "set", "md", nil, binxml.Node{Tag: "pair-device", Children: refs}), true},
		{binxml.Node{Tag: "list", Children: keys[:3*elideKeep]}, true},
		{binxml.Node{Tag: "list", Children: keys}, false},                                                      // elided
		{binxml.Node{Tag: "iq", Children: []binxml.Node{{Tag: "identity", Content: make([]byte, 32)}}}, false}, // secret
		{binxml.Node{Tag: "ref", Content: []byte{}}, false},                                                    // empty content dropped
		{binxml.Node{Tag: "x", Children: []binxml.Node{}, Content: []byte("y")}, false},                        // content beside children
	} {
		if got := redactsSame(tc.n); got != tc.same {
			t.Errorf("redactsSame(%s) = %v, want %v", xmlString(tc.n), got, tc.same)
		}
		if got, want := xmlString(redact(tc.n)), xmlString(tc.n); tc.same && got != want {
			t.Errorf("kept as it is, %s would log as %s", want, got)
		}
	}
}
