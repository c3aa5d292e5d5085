package binxml_test

import (
	"testing"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/binxml/binxmltest"
)

func BenchmarkMarshal(b *testing.B) {
	for _, c := range binxmltest.Corpus() {
		b.Run(c.Name, func(b *testing.B) {
			enc := must(binxml.Marshal(c.Node))
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := binxml.Marshal(c.Node); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarshalFloor is what any Marshal that returns a fresh slice pays
// before encoding anything: one allocation of the frame's size and writing
// its bytes. Run beside BenchmarkMarshal it shows how much of Marshal is
// the encoder (see bench/NOTES.md, "Marshal at 4–64 KiB").
func BenchmarkMarshalFloor(b *testing.B) {
	for _, c := range binxmltest.Corpus() {
		b.Run(c.Name, func(b *testing.B) {
			enc := must(binxml.Marshal(c.Node))
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				floorSink = append([]byte(nil), enc...)
			}
		})
	}
}

var floorSink []byte

// BenchmarkAppendNode reuses one buffer, as a transport writing frames would.
func BenchmarkAppendNode(b *testing.B) {
	for _, c := range binxmltest.Corpus() {
		b.Run(c.Name, func(b *testing.B) {
			buf := must(binxml.Marshal(c.Node))
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = binxml.DictV3.AppendNode(buf[:0], c.Node); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	for _, c := range binxmltest.Corpus() {
		b.Run(c.Name, func(b *testing.B) {
			enc := must(binxml.Marshal(c.Node))
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := binxml.Unmarshal(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkString(b *testing.B) {
	n := binxmltest.PairSuccess()
	b.ReportAllocs()
	for b.Loop() {
		_ = n.String()
	}
}
