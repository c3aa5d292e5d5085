package walink

import (
	"bytes"
	"testing"

	"github.com/walinkdev/walink/binxml"
)

// TestOwnContent: after ownContent, a node decoded from a frame keeps its
// Content when the frame's bytes are overwritten, as the read loop's
// borrowed frames are by the next read.
func TestOwnContent(t *testing.T) {
	in := binxml.Node{Tag: "iq", Attrs: []binxml.Attr{binxml.A("id", "1")}, Children: []binxml.Node{
		{Tag: "ref", Content: []byte("first-ref")},
		{Tag: "list", Children: []binxml.Node{{Tag: "key", Content: bytes.Repeat([]byte{7}, 32)}, {Tag: "empty", Content: []byte{}}}},
		{Tag: "ref", Content: []byte("second")},
	}}
	frame, err := binxml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	n, err := binxml.Unmarshal(frame)
	if err != nil {
		t.Fatal(err)
	}
	want := n.String()
	ownContent(&n)
	for i := range frame {
		frame[i] = 0xee
	}
	if got := n.String(); got != want {
		t.Fatalf("after the frame was overwritten:\n%s\nwant\n%s", got, want)
	}
	if !bytes.Equal(n.Children[1].Children[0].Content, bytes.Repeat([]byte{7}, 32)) || string(n.Children[2].Content) != "second" {
		t.Fatalf("contents lost: %s", n.String())
	}
	// Appending to one Content must not run into the next.
	n.Children[0].Content = append(n.Children[0].Content, 'x')
	if string(n.Children[2].Content) != "second" {
		t.Fatal("Contents share capacity")
	}
}
