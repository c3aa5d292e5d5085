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
