package transport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/walinkdev/walink/noise"
)

// Frames written before the peer closes are all delivered, then io.EOF.
func TestFramesBeforeEOF(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	client, server, _ := handshakePair(t, f, cc, sc, f.clientConfig())
	go func() {
		for i := range 3 {
			server.WriteFrame(context.Background(), fmt.Appendf(nil, "frame %d", i))
		}
		server.Close()
	}()
	for i := range 3 {
		p, err := client.ReadFrame()
		if err != nil || string(p) != fmt.Sprintf("frame %d", i) {
			t.Fatalf("frame %d: %q %v", i, p, err)
		}
	}
	if _, err := client.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after frames: %v", err)
	}
	if _, err := client.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("EOF does not stick: %v", err)
	}
}

// A stream that ends inside a frame is an unexpected EOF.
func TestTruncatedFrame(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	client, _, _ := handshakePair(t, f, cc, sc, f.clientConfig())
	go func() {
		sc.Write([]byte{0, 0, 40, 1, 2, 3}) // bypass the server Conn
		sc.Close()
	}()
	_, err := client.ReadFrame()
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, noise.ErrShortFrame) {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkConnRoundTrip sends a 1 KiB frame each way over net.Pipe.
func BenchmarkConnRoundTrip(b *testing.B) {
	f := newFixture(b)
	cc, sc := net.Pipe()
	client, server, _ := handshakePair(b, f, cc, sc, f.clientConfig())
	defer client.Close()
	defer server.Close()
	msg := make([]byte, 1024)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := server.ReadFrame()
			if err != nil {
				return
			}
			if server.WriteFrame(ctx, p) != nil {
				return
			}
		}
	}()
	b.SetBytes(2 * int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := client.WriteFrame(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := client.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
	client.Close()
	<-done
}

// recordConn keeps a copy of every Write.
type recordConn struct {
	net.Conn
	writes chan []byte
}

func (c *recordConn) Write(p []byte) (int, error) {
	select {
	case c.writes <- append([]byte(nil), p...):
	default:
	}
	return c.Conn.Write(p)
}

// The header and message 1 go out in a single write, as WhatsApp's
// clients send them (one WebSocket message).
func TestClientHelloOneWrite(t *testing.T) {
	checkGoroutines(t)
	f := newFixture(t)
	cc, sc := net.Pipe()
	rc := &recordConn{Conn: cc, writes: make(chan []byte, 4)}
	handshakePair(t, f, rc, sc, f.clientConfig())
	first := <-rc.writes
	// 'W' 'A' 06 03 | 00 00 24 | 12 22 0a 20 <32-byte ephemeral>
	if len(first) != 4+3+0x24 || string(first[:7]) != "WA\x06\x03\x00\x00\x24" || string(first[7:11]) != "\x12\x22\x0a\x20" {
		t.Fatalf("first write = %x", first)
	}
}

// chunkConn hands out what the peer wrote in reads of at most n bytes, so
// frames arrive split and several at once.
type chunkConn struct {
	net.Conn
	n int
}

func (c chunkConn) Read(p []byte) (int, error) { return c.Conn.Read(p[:min(len(p), c.n)]) }

// TestNextFrameInPlace: frames of every size class, read with NextFrame
// (decrypted in place) and ReadFrame alternately over reads of odd sizes,
// come out intact; a frame from ReadFrame stays intact after later reads.
func TestNextFrameInPlace(t *testing.T) {
	checkGoroutines(t)
	for _, chunk := range []int{1, 7, 100, 5000, 1 << 20} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) {
			f := newFixture(t)
			cc, sc := net.Pipe()
			client, server, _ := handshakePair(t, f, chunkConn{cc, chunk}, sc, f.clientConfig())
			sizes := []int{0, 1, 15, 16, 17, 100, noise.FillSize - 20, noise.FillSize, 3 * noise.FillSize, 70 << 10, 10}
			frame := func(i, n int) []byte {
				b := make([]byte, n)
				for j := range b {
					b[j] = byte(i*31 + j)
				}
				return b
			}
			go func() {
				for i, n := range sizes {
					if err := server.WriteFrame(context.Background(), frame(i, n)); err != nil {
						return
					}
				}
			}()
			var kept [][]byte
			for i, n := range sizes {
				read := client.NextFrame
				if i%2 == 1 {
					read = client.ReadFrame
				}
				p, err := read()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want := frame(i, n); string(p) != string(want) {
					t.Fatalf("frame %d (%d bytes) differs", i, n)
				}
				if i%2 == 1 {
					kept = append(kept, p)
				}
			}
			for k, p := range kept {
				i := 2*k + 1
				if string(p) != string(frame(i, sizes[i])) {
					t.Fatalf("ReadFrame's frame %d changed after later reads", i)
				}
			}
		})
	}
}
