package watest

import (
	"testing"

	"github.com/walinkdev/walink/binxml"
)

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
