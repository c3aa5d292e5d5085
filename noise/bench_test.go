package noise_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/walinkdev/walink/noise"
)

var benchSizes = []int{1 << 10, 64 << 10}

// BenchmarkCipherSealOpen measures a Seal and an Open of one frame.
func BenchmarkCipherSealOpen(b *testing.B) {
	k := bytes.Repeat([]byte{1}, 32)
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			a, _ := noise.NewCipher(k, k)
			c, _ := noise.NewCipher(k, k)
			pt := make([]byte, n)
			ct := make([]byte, 0, n+noise.Overhead)
			out := make([]byte, 0, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sealed, err := a.Seal(ct[:0], pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Open(out[:0], sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawGCMSealOpen is the baseline: crypto/cipher AES-256-GCM with
// the same nonce layout, no wrapper.
func BenchmarkRawGCMSealOpen(b *testing.B) {
	k := bytes.Repeat([]byte{1}, 32)
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			blk, _ := aes.NewCipher(k)
			g, _ := cipher.NewGCM(blk)
			pt := make([]byte, n)
			ct := make([]byte, 0, n+16)
			out := make([]byte, 0, n)
			var nonce [12]byte
			var ctr uint32
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				binary.BigEndian.PutUint32(nonce[8:], ctr)
				sealed := g.Seal(ct[:0], nonce[:], pt, nil)
				if _, err := g.Open(out[:0], nonce[:], sealed, nil); err != nil {
					b.Fatal(err)
				}
				ctr++
			}
		})
	}
}

func BenchmarkFrameEncode(b *testing.B) {
	body := make([]byte, 1024)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = noise.AppendFrame(buf[:0], body)
	}
}

// BenchmarkFrameDecode feeds 16 frames of 1 KiB per Write.
func BenchmarkFrameDecode(b *testing.B) {
	var stream []byte
	for range 16 {
		stream, _ = noise.AppendFrame(stream, make([]byte, 1024))
	}
	var d noise.Decoder
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		d.Write(stream)
		for n := 0; ; n++ {
			body, err := d.Next()
			if err != nil {
				b.Fatal(err)
			}
			if body == nil {
				if n != 16 {
					b.Fatalf("%d frames", n)
				}
				break
			}
		}
	}
}

// BenchmarkHandshake runs both sides of a full XX handshake with
// certificate verification.
func BenchmarkHandshake(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	client, serverStatic, root, inter := mustKP(b), mustKP(b), mustKP(b), mustKP(b)
	chain, err := noise.NewCertChain(rand.Reader, root.Private, inter, serverStatic.Public, noise.CertOptions{
		IntermediateSerial: 1, LeafSerial: 2, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		in, _ := noise.NewInitiator(noise.InitiatorConfig{Static: client, Rand: rand.Reader, RootKey: root.Public, Time: func() time.Time { return now }})
		r, _ := noise.NewResponder(noise.ResponderConfig{Static: serverStatic, Rand: rand.Reader})
		m1, _ := in.ClientHello()
		if err := r.ReadClientHello(m1); err != nil {
			b.Fatal(err)
		}
		m2, _ := r.ServerHello(chain)
		if _, _, err := in.ReadServerHello(m2); err != nil {
			b.Fatal(err)
		}
		m3, _, _ := in.ClientFinish([]byte("payload"))
		if _, _, _, err := r.ReadClientFinish(m3); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResume runs both sides of an IK resume: accepted with the chain
// in the answer (verified again), accepted with an empty answer (the cached
// chain stands), and refused (XXfallback, a full XX plus the failed IK).
func BenchmarkResume(b *testing.B) {
	p := newIKPair(b)
	stale := *p.info
	stale.LeafKey = mustKP(b).Public
	for _, bc := range []struct {
		name  string
		info  *noise.CertInfo
		chain []byte
	}{{"accept", p.info, p.chain}, {"accept-no-chain", p.info, nil}, {"fallback", &stale, p.chain}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				in := p.initiator(b, bc.info)
				r := p.responder(b, noise.IKAccept)
				m1, err := in.ResumeHello([]byte("payload"))
				if err != nil {
					b.Fatal(err)
				}
				if err := r.ReadClientHello(m1); err != nil {
					b.Fatal(err)
				}
				m2, _ := r.ServerHello(bc.chain)
				if _, _, err := in.ReadServerHello(m2); err != nil {
					b.Fatal(err)
				}
				m3, _, _ := in.ClientFinish([]byte("payload"))
				if m3 == nil {
					_, _, _, err = r.Resumed()
				} else {
					_, _, _, err = r.ReadClientFinish(m3)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
