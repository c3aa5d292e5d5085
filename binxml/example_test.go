package binxml_test

import (
	"fmt"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
)

func ExampleMarshal() {
	n := binxml.Node{
		Tag:      "iq",
		Attrs:    []binxml.Attr{binxml.A("id", "1"), binxml.A("type", "get"), binxml.AJ("to", jid.ServerJID)},
		Children: []binxml.Node{{Tag: "ping"}},
	}
	frame, err := binxml.Marshal(n)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", frame)
	// Output: 00f808190855042911fa0003f801f80156
}

func ExampleUnmarshal() {
	n, err := binxml.Unmarshal([]byte{0x00, 0xf8, 0x03, 0x19, 0x04, 0x29})
	if err != nil {
		panic(err)
	}
	fmt.Println(n.Tag, n.Attr("type"))
	fmt.Println(n)
	// Output:
	// iq get
	// <iq type="get"/>
}

func ExampleNode_StringRedacted() {
	n := binxml.Node{Tag: "pair-device-sign", Children: []binxml.Node{
		{Tag: "device-identity", Attrs: []binxml.Attr{binxml.A("key-index", "3")}, Content: []byte{1, 2, 3}},
	}}
	fmt.Println(n.StringRedacted(binxml.RedactSensitive))
	// Output: <pair-device-sign><device-identity key-index="3"><!-- redacted 3 bytes --></device-identity></pair-device-sign>
}

func ExampleDictionaryFor() {
	header := []byte{'W', 'A', 6, 2} // an older client announcing dictionary 2
	d, err := binxml.DictionaryFor(header[3])
	if err != nil {
		panic(err)
	}
	frame, _ := d.Marshal(binxml.Node{Tag: "iq"})
	fmt.Printf("v%d %x\n", d.Version, frame)
	// Output: v2 00f8011e
}
