package bench

import (
	"bytes"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/binxml/binxmltest"
	"github.com/walinkdev/walink/noise"
)

// walinkSendNode is the send path of transport.Conn.WriteNode without the
// socket: the stanza is encoded straight into the frame buffer behind the
// 3-byte length (binxml.AppendMarshal) and sealed in place; the buffer is
// reused (transport borrows it from a pool for the write).
func (l *walinkLink) sendNode(n binxml.Node) ([]byte, error) {
	buf, err := binxml.AppendMarshal(append(l.wbuf[:0], 0, 0, 0), n)
	if err != nil {
		return nil, err
	}
	buf = append(buf, make([]byte, noise.Overhead)...)[:len(buf)]
	buf, err = l.tx.Seal(buf[:noise.FrameHeaderSize], buf[noise.FrameHeaderSize:])
	if err != nil {
		return nil, err
	}
	m := len(buf) - noise.FrameHeaderSize
	buf[0], buf[1], buf[2] = byte(m>>16), byte(m>>8), byte(m)
	l.wbuf = buf
	return buf, nil
}

// TestSendSame: the in-place send path and whatsmeow's Marshal + seal give
// frames of the same length that each side's receive path opens into the
// same stanza.
func TestSendSame(t *testing.T) {
	wl := newWalinkLink(t)
	wm := &whatsmeowLink{tx: newGCM(t), rx: newGCM(t)}
	for _, c := range binxmltest.Corpus() {
		a, err := wl.sendNode(c.Node)
		if err != nil {
			t.Fatal(err)
		}
		a = bytes.Clone(a)
		pt, err := waBinary.Marshal(ToWhatsmeow(c.Node))
		if err != nil {
			t.Fatal(err)
		}
		b := wm.seal(pt)
		if len(a) != len(b) {
			t.Fatalf("%s: frame of %d bytes, whatsmeow's %d", c.Name, len(a), len(b))
		}
		got, err := wm.open(a)
		if err != nil {
			t.Fatalf("%s: whatsmeow path opening walink's frame: %v", c.Name, err)
		}
		unpacked, err := waBinary.Unpack(got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := waBinary.Unmarshal(unpacked)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameNode(ToWhatsmeow(c.Node), *back); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
	}
}

// BenchmarkSend: stanza → sealed wire frame. walink = AppendMarshal into
// the frame buffer + in-place seal (transport.Conn.WriteNode's path);
// walink-marshal = the path before it (Marshal, then seal into the frame
// buffer); whatsmeow = waBinary.Marshal + its NoiseSocket/FrameSocket
// steps (see whatsmeowLink).
func BenchmarkSend(b *testing.B) {
	for _, c := range binxmltest.Corpus() {
		wmNode := ToWhatsmeow(c.Node)
		b.Run("case="+c.Name+"/impl=walink", func(b *testing.B) {
			l := newWalinkLink(b)
			b.ReportAllocs()
			for b.Loop() {
				w, err := l.sendNode(c.Node)
				if err != nil {
					b.Fatal(err)
				}
				sinkBytes = w
			}
		})
		b.Run("case="+c.Name+"/impl=walink-marshal", func(b *testing.B) {
			l := newWalinkLink(b)
			b.ReportAllocs()
			for b.Loop() {
				pt, err := binxml.Marshal(c.Node)
				if err != nil {
					b.Fatal(err)
				}
				w, err := l.seal(pt)
				if err != nil {
					b.Fatal(err)
				}
				sinkBytes = w
			}
		})
		b.Run("case="+c.Name+"/impl=whatsmeow", func(b *testing.B) {
			l := &whatsmeowLink{tx: newGCM(b), rx: newGCM(b)}
			b.ReportAllocs()
			for b.Loop() {
				pt, err := waBinary.Marshal(wmNode)
				if err != nil {
					b.Fatal(err)
				}
				sinkBytes = l.seal(pt)
			}
		})
	}
}
