package bench

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/walinkdev/walink/noise"
)

var transportSizes = []int{1 << 10, 64 << 10}

func transportKey() []byte { return bytes.Repeat([]byte{0x42}, 32) }

func newGCM(tb testing.TB) cipher.AEAD {
	blk, err := aes.NewCipher(transportKey())
	if err != nil {
		tb.Fatal(err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// walinkLink is walink's per-frame path as transport.Conn does it: the
// sealed body is appended behind a 3-byte length in one reused buffer;
// reading copies the wire bytes into the frame decoder's buffer once (the
// copy Conn's read makes, noise.Decoder.Fill, straight from the socket)
// and opens the body in place (transport.Conn.NextFrame, which the
// client's read loop uses).
type walinkLink struct {
	tx, rx *noise.Cipher
	wbuf   []byte
	dec    *noise.Decoder
}

func newWalinkLink(tb testing.TB) *walinkLink {
	tx, err := noise.NewCipher(transportKey(), transportKey())
	if err != nil {
		tb.Fatal(err)
	}
	rx, err := noise.NewCipher(transportKey(), transportKey())
	if err != nil {
		tb.Fatal(err)
	}
	return &walinkLink{tx: tx, rx: rx, dec: noise.NewDecoder(noise.DecoderConfig{})}
}

func (l *walinkLink) seal(pt []byte) ([]byte, error) {
	buf := append(l.wbuf[:0], 0, 0, 0)
	buf, err := l.tx.Seal(buf, pt)
	if err != nil {
		return nil, err
	}
	n := len(buf) - noise.FrameHeaderSize
	buf[0], buf[1], buf[2] = byte(n>>16), byte(n>>8), byte(n)
	l.wbuf = buf
	return buf, nil
}

func (l *walinkLink) open(wire []byte) ([]byte, error) {
	if _, err := l.dec.Write(wire); err != nil {
		return nil, err
	}
	body, err := l.dec.Next()
	if err != nil || body == nil {
		return nil, fmt.Errorf("no frame: %v", err)
	}
	return l.rx.Open(body[:0], body)
}

// whatsmeowLink reproduces whatsmeow's per-frame steps (socket.NoiseSocket
// and socket.FrameSocket in the pinned version; both are unexported paths
// that need a live websocket): Seal(nil, generateIV(counter)) into a fresh
// slice, then a fresh header+body frame with a copy; on receipt the frame is
// cut out of the websocket message and opened in place with a fresh IV.
// NOT counted: the goroutine and channel NoiseSocket.SendFrame starts for
// every frame, and the channel hop of FrameSocket.Frames on receipt.
type whatsmeowLink struct {
	tx, rx           cipher.AEAD
	txCount, rxCount uint32
}

func generateIV(count uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], count)
	return iv
}

func (l *whatsmeowLink) seal(pt []byte) []byte {
	ct := l.tx.Seal(nil, generateIV(l.txCount), pt, nil)
	l.txCount++
	whole := make([]byte, 3+len(ct))
	whole[0], whole[1], whole[2] = byte(len(ct)>>16), byte(len(ct)>>8), byte(len(ct))
	copy(whole[3:], ct)
	return whole
}

func (l *whatsmeowLink) open(msg []byte) ([]byte, error) {
	length := int(msg[0])<<16 | int(msg[1])<<8 | int(msg[2])
	ct := msg[3 : 3+length]
	pt, err := l.rx.Open(ct[:0], generateIV(l.rxCount), ct, nil)
	l.rxCount++
	return pt, err
}

// gcmLink is the limit: AES-256-GCM from crypto/cipher with the same nonce
// layout, preallocated buffers, no framing.
type gcmLink struct {
	tx, rx  cipher.AEAD
	nonce   [12]byte
	ctr     uint32
	ct, out []byte
	rxNonce [12]byte
	rxCtr   uint32
}

func (l *gcmLink) seal(pt []byte) []byte {
	binary.BigEndian.PutUint32(l.nonce[8:], l.ctr)
	l.ctr++
	l.ct = l.tx.Seal(l.ct[:0], l.nonce[:], pt, nil)
	return l.ct
}

func (l *gcmLink) open(ct []byte) ([]byte, error) {
	binary.BigEndian.PutUint32(l.rxNonce[8:], l.rxCtr)
	l.rxCtr++
	var err error
	l.out, err = l.rx.Open(l.out[:0], l.rxNonce[:], ct, nil)
	return l.out, err
}

// TestTransportSame checks that the three paths produce the same ciphertext
// (same key, same nonces) and that walink's and whatsmeow's frames are
// byte-identical, so the benchmark compares the same work.
func TestTransportSame(t *testing.T) {
	wl := newWalinkLink(t)
	wm := &whatsmeowLink{tx: newGCM(t), rx: newGCM(t)}
	raw := &gcmLink{tx: newGCM(t), rx: newGCM(t)}
	for i := range 3 {
		pt := bytes.Repeat([]byte{byte(i)}, 1000+i)
		a, err := wl.seal(pt)
		if err != nil {
			t.Fatal(err)
		}
		b := wm.seal(pt)
		c := raw.seal(pt)
		if !bytes.Equal(a, b) || !bytes.Equal(a[3:], c) {
			t.Fatalf("frame %d differs", i)
		}
		for name, open := range map[string]func([]byte) ([]byte, error){
			"walink": wl.open, "whatsmeow": wm.open,
		} {
			got, err := open(bytes.Clone(a))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s open frame %d: %v", name, i, err)
			}
		}
		if got, err := raw.open(c); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("raw open frame %d: %v", i, err)
		}
	}
}

// BenchmarkTransport: op=seal is plaintext → wire frame; op=sealopen adds
// the receiver's deframe + open of that frame (open = sealopen − seal).
func BenchmarkTransport(b *testing.B) {
	for _, n := range transportSizes {
		size := fmt.Sprintf("%dKiB", n>>10)
		pt := bytes.Repeat([]byte{0xa5}, n)
		b.Run("op=seal/size="+size+"/impl=aesgcm", func(b *testing.B) {
			l := &gcmLink{tx: newGCM(b), rx: newGCM(b)}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sinkBytes = l.seal(pt)
			}
		})
		b.Run("op=seal/size="+size+"/impl=walink", func(b *testing.B) {
			l := newWalinkLink(b)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				w, err := l.seal(pt)
				if err != nil {
					b.Fatal(err)
				}
				sinkBytes = w
			}
		})
		b.Run("op=seal/size="+size+"/impl=whatsmeow", func(b *testing.B) {
			l := &whatsmeowLink{tx: newGCM(b), rx: newGCM(b)}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sinkBytes = l.seal(pt)
			}
		})
		b.Run("op=sealopen/size="+size+"/impl=aesgcm", func(b *testing.B) {
			l := &gcmLink{tx: newGCM(b), rx: newGCM(b)}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.open(l.seal(pt)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op=sealopen/size="+size+"/impl=walink", func(b *testing.B) {
			l := newWalinkLink(b)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				w, err := l.seal(pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.open(w); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op=sealopen/size="+size+"/impl=whatsmeow", func(b *testing.B) {
			l := &whatsmeowLink{tx: newGCM(b), rx: newGCM(b)}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.open(l.seal(pt)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
