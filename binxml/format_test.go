package binxml_test

import (
	"strings"
	"testing"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/binxml/binxmltest"
	"github.com/walinkdev/walink/jid"
)

func TestString(t *testing.T) {
	cases := []struct {
		n    binxml.Node
		want string
	}{
		{binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1"), binxml.A("type", "get")}, Children: []binxml.Node{{Tag: "ping"}}},
			`<iq id="1" type="get"><ping/></iq>`},
		{binxml.Node{Tag: "iq", Children: []binxml.Node{}}, `<iq></iq>`},
		{binxml.Node{Tag: "x", Content: []byte{}}, `<x></x>`},
		{binxml.Node{Tag: "x", Attrs: []binxml.Attr{binxml.A("q", "a\"<b>&\x00\n\xff")}}, `<x q="a&quot;&lt;b&gt;&amp;&#x00;&#x0a;&#xff;"/>`},
		{binxml.Node{Tag: "x", Content: []byte("héllo <w>")}, `<x>héllo &lt;w&gt;</x>`},
		{binxml.Node{Tag: "x", Content: []byte{0, 1, 0xfe}}, `<x>0001fe</x>`},
		{binxml.Node{Tag: "x", Content: make([]byte, 257)}, `<x><!-- 257 bytes --></x>`},
		{binxml.Node{Tag: "x", Attrs: []binxml.Attr{binxml.AJ("to", jid.NewAD("1", 2, jid.LIDServer))}}, `<x to="1:2@lid"/>`},
	}
	for _, c := range cases {
		if got := c.n.String(); got != c.want {
			t.Errorf("String() = %s, want %s", got, c.want)
		}
	}
	long := binxml.Format{MaxContent: -1}.String(binxml.Node{Tag: "x", Content: make([]byte, 300)})
	if !strings.Contains(long, strings.Repeat("00", 300)) {
		t.Errorf("MaxContent -1 truncated: %s", long)
	}
}

func TestRedaction(t *testing.T) {
	n := binxmltest.PairSuccess()
	n.Attrs = append(n.Attrs, binxml.A("companion_enc_static", "c2VjcmV0"))
	plain := n.String()
	red := n.StringRedacted(binxml.RedactSensitive)
	if !strings.Contains(plain, "c2VjcmV0") {
		t.Fatalf("plain lacks the attribute: %s", plain)
	}
	if strings.Contains(red, "c2VjcmV0") || !strings.Contains(red, `companion_enc_static="<redacted>"`) {
		t.Errorf("attribute not redacted: %s", red)
	}
	if !strings.Contains(red, "<device-identity><!-- redacted 396 bytes --></device-identity>") {
		t.Errorf("device-identity not redacted: %s", red)
	}
	if !strings.Contains(red, `<platform name="android"/>`) {
		t.Errorf("too much redacted: %s", red)
	}
	// The path reaches the hook.
	var paths []string
	binxml.Format{Redact: func(path []string, key string) bool {
		if key == "" {
			paths = append(paths, strings.Join(path, "/"))
		}
		return false
	}}.String(n)
	if strings.Join(paths, ",") != "iq/pair-success/device-identity" {
		t.Errorf("paths = %v", paths)
	}
}

func TestStringDeep(t *testing.T) {
	// String must not recurse without bound even on nodes the encoder refuses.
	n := binxmltest.Nested(binxml.MaxDepth + 10)
	if s := n.String(); !strings.Contains(s, "too deep") {
		t.Errorf("no depth cap in String")
	}
}
