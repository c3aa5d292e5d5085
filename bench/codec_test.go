package bench

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/binxml/binxmltest"
)

// sameNode compares two whatsmeow-shaped nodes, treating an empty attribute
// map like a nil one (whatsmeow's decoder always makes the map).
func sameNode(a, b waBinary.Node) error {
	if a.Tag != b.Tag {
		return fmt.Errorf("tag %q != %q", a.Tag, b.Tag)
	}
	if len(a.Attrs) != len(b.Attrs) || (len(a.Attrs) > 0 && !reflect.DeepEqual(a.Attrs, b.Attrs)) {
		return fmt.Errorf("<%s> attrs %v != %v", a.Tag, a.Attrs, b.Attrs)
	}
	switch ac := a.Content.(type) {
	case []waBinary.Node:
		bc, ok := b.Content.([]waBinary.Node)
		if !ok || len(ac) != len(bc) {
			return fmt.Errorf("<%s> children differ: %T vs %T", a.Tag, a.Content, b.Content)
		}
		for i := range ac {
			if err := sameNode(ac[i], bc[i]); err != nil {
				return err
			}
		}
	case []byte:
		bc, ok := b.Content.([]byte)
		if !ok || !bytes.Equal(ac, bc) {
			return fmt.Errorf("<%s> content differs: %T vs %T", a.Tag, a.Content, b.Content)
		}
	case nil:
		if b.Content != nil {
			return fmt.Errorf("<%s> content %T vs none", a.Tag, b.Content)
		}
	default:
		return fmt.Errorf("<%s> unexpected content %T", a.Tag, a.Content)
	}
	return nil
}

// TestCrossCodec is the precondition of a fair comparison: each library
// decodes what the other encodes into the same stanza, and both encodings
// have the same length (they differ only in attribute order, which
// whatsmeow takes from map iteration).
func TestCrossCodec(t *testing.T) {
	for _, c := range binxmltest.Corpus() {
		t.Run(c.Name, func(t *testing.T) {
			want := ToWhatsmeow(c.Node)
			wl, err := binxml.Marshal(c.Node)
			if err != nil {
				t.Fatal(err)
			}
			wm, err := waBinary.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if len(wl) != len(wm) {
				t.Errorf("encoded length: walink %d, whatsmeow %d", len(wl), len(wm))
			}
			// whatsmeow reads walink's bytes.
			unpacked, err := waBinary.Unpack(wl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := waBinary.Unmarshal(unpacked)
			if err != nil {
				t.Fatalf("whatsmeow decoding walink's bytes: %v", err)
			}
			if err := sameNode(want, *got); err != nil {
				t.Errorf("whatsmeow decoding walink's bytes: %v", err)
			}
			// walink reads whatsmeow's bytes.
			back, err := binxml.Unmarshal(wm)
			if err != nil {
				t.Fatalf("walink decoding whatsmeow's bytes: %v", err)
			}
			if err := sameNode(want, ToWhatsmeow(back)); err != nil {
				t.Errorf("walink decoding whatsmeow's bytes: %v", err)
			}
		})
	}
}

var sinkBytes []byte

// BenchmarkCodec encodes and decodes each corpus stanza. Encode is
// Node → frame plaintext (flags byte + node, fresh buffer, as both
// libraries' Marshal return it); decode is frame plaintext → Node (whatsmeow:
// Unpack + Unmarshal, which is what its receive path does). Both decode the
// same bytes (walink's encoding, which TestCrossCodec shows whatsmeow reads).
func BenchmarkCodec(b *testing.B) {
	for _, c := range binxmltest.Corpus() {
		wmNode := ToWhatsmeow(c.Node)
		frame, err := binxml.Marshal(c.Node)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("op=encode/case="+c.Name+"/impl=whatsmeow", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				out, err := waBinary.Marshal(wmNode)
				if err != nil {
					b.Fatal(err)
				}
				sinkBytes = out
			}
		})
		b.Run("op=encode/case="+c.Name+"/impl=walink", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				out, err := binxml.Marshal(c.Node)
				if err != nil {
					b.Fatal(err)
				}
				sinkBytes = out
			}
		})
		b.Run("op=decode/case="+c.Name+"/impl=whatsmeow", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				data, err := waBinary.Unpack(frame)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := waBinary.Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op=decode/case="+c.Name+"/impl=walink", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if _, err := binxml.Unmarshal(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCodecAppend is walink's allocation-free encode path (a reused
// buffer, as the client's writer uses it); whatsmeow has no equivalent.
func BenchmarkCodecAppend(b *testing.B) {
	for _, c := range binxmltest.Corpus() {
		b.Run("op=encode/case="+c.Name+"/impl=walink-append", func(b *testing.B) {
			buf, _ := binxml.DictV3.AppendMarshal(nil, c.Node)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				var err error
				buf, err = binxml.DictV3.AppendMarshal(buf[:0], c.Node)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
