package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

const testWSKey = "dGhlIHNhbXBsZSBub25jZQ=="

// plainUpgrade is the answer Accept writes for testWSKey.
func plainUpgrade() string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(testWSKey) + "\r\n\r\n"
}

// slowOnly is readUpgrade without the quick path (as it was before it):
// the reference.
func slowOnly(r io.Reader, key string) ([]byte, error) {
	rr := getRespReader(r)
	defer putRespReader(rr)
	br := rr.br
	if err := slowUpgrade(br, &rr.lr, key); err != nil {
		return nil, err
	}
	return copyBuffered(br), nil
}

func TestQuickUpgradeTakesPlainAnswers(t *testing.T) {
	acc := acceptFor(testWSKey)
	for _, head := range []string{
		plainUpgrade(),
		"HTTP/1.1 101\r\nupgrade:websocket\r\nCONNECTION: keep-alive, Upgrade\r\nsec-websocket-accept:\t" + acc + " \r\nServer: x\r\nSec-WebSocket-Extensions: \r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c, WebSocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\nSec-WebSocket-Accept: other\r\n\r\n",
	} {
		br := bufio.NewReaderSize(strings.NewReader(head+"rest"), 1024)
		n, ok := quickUpgrade(br, testWSKey)
		if !ok || n != len(head) {
			t.Errorf("quickUpgrade(%q) = %d, %v; want %d, true", head, n, ok, len(head))
		}
	}
	acc2 := acceptFor("other")
	for _, head := range []string{
		"HTTP/1.1 100 Continue\r\n\r\n" + plainUpgrade(),
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: " + acc + "\n\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc2 + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade:\r\n websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 1\r\nContent-Length: 2\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade : websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Long: " + strings.Repeat("x", 1100) + "\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n",
	} {
		br := bufio.NewReaderSize(strings.NewReader(head), 1024)
		if n, ok := quickUpgrade(br, testWSKey); ok {
			t.Errorf("quickUpgrade(%q) = %d, true; want it left to http.ReadResponse", head, n)
		}
		pre, err := readUpgrade(strings.NewReader(head), testWSKey)
		wpre, werr := slowOnly(strings.NewReader(head), testWSKey)
		if !bytes.Equal(pre, wpre) || errString(err) != errString(werr) {
			t.Errorf("readUpgrade(%q) = %q, %v; http.ReadResponse's path: %q, %v", head, pre, err, wpre, werr)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestQuickUpgradeWaitsNoLonger: a malformed first line is refused at
// once, as http.ReadResponse refuses it, not after waiting for a head that
// never comes.
func TestQuickUpgradeWaitsNoLonger(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() {
		_, err := readUpgrade(pr, testWSKey)
		done <- err
	}()
	pw.Write([]byte("FOO\r\n"))
	if err := <-done; err == nil || !strings.Contains(err.Error(), "malformed HTTP response") {
		t.Fatalf("readUpgrade of a bad status line: %v", err)
	}
}

func TestReadUpgradeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffers")
	}
	head := []byte(plainUpgrade())
	r := bytes.NewReader(head)
	readUpgrade(r, testWSKey) // warm the reader pool
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(head)
		if _, err := readUpgrade(r, testWSKey); err != nil {
			t.Fatal(err)
		}
	})
	// http.ReadResponse's path took 15.
	if allocs != 0 {
		t.Errorf("readUpgrade of a plain 101: %v allocations, want 0", allocs)
	}
}

// FuzzReadUpgrade: the quick path and http.ReadResponse's agree on every
// input, read whole or a byte at a time: the same acceptance, error and
// bytes read past the head.
func FuzzReadUpgrade(f *testing.F) {
	acc := acceptFor(testWSKey)
	f.Add([]byte(plainUpgrade() + "\x82\x03abc"))
	f.Add([]byte("HTTP/1.1 101\r\nupgrade:websocket\r\nCONNECTION: keep-alive, Upgrade\r\nsec-websocket-accept:\t" + acc + " \r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\n" + plainUpgrade()))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nTransfer-Encoding: chunked\r\nSec-WebSocket-Accept: " + acc + "\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acc + "\r\nX: \xff\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, oneByte := range []bool{false, true} {
			reader := func() io.Reader {
				if oneByte {
					return iotest.OneByteReader(bytes.NewReader(data))
				}
				return bytes.NewReader(data)
			}
			wpre, werr := slowOnly(reader(), testWSKey)
			pre, err := readUpgrade(reader(), testWSKey)
			if errString(err) != errString(werr) || !bytes.Equal(pre, wpre) {
				t.Fatalf("readUpgrade = %q, %v; http.ReadResponse's path: %q, %v", pre, err, wpre, werr)
			}
		}
		// The quick path's own verdict: accepted only what ReadResponse
		// accepts, with the same head.
		br := bufio.NewReaderSize(bytes.NewReader(data), 1024)
		if n, ok := quickUpgrade(br, testWSKey); ok {
			lr := &limitedReader{r: bytes.NewReader(data), n: maxResponseHeaderBytes}
			sbr := bufio.NewReaderSize(lr, 1024)
			if err := slowUpgrade(sbr, lr, testWSKey); err != nil {
				t.Fatalf("quick path took %q, http.ReadResponse refused it: %v", data[:n], err)
			}
			// The head ReadResponse read: what the reader gave up minus
			// what it still buffers.
			if got := len(data) - lr.r.(*bytes.Reader).Len() - sbr.Buffered(); got != n {
				t.Fatalf("quick path's head is %d bytes, ReadResponse's %d", n, got)
			}
		}
	})
}

// TestHandshakeIONoWatch: a handshake under a ctx that cannot end watches
// nothing (ServerHandshake under context.Background, as a server with
// socket deadlines alone runs it).
func TestHandshakeIONoWatch(t *testing.T) {
	h := newHandshakeIO(context.Background(), nil, nil, time.Second, nil)
	if h.watch != nil {
		t.Error("context.Background is watched")
	}
	if err := h.stop(); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if h := newHandshakeIO(ctx, nil, nil, time.Second, nil); h.watch == nil {
		t.Error("a ctx that can end is not watched")
	} else if err := h.stop(); err != nil {
		t.Error(err)
	}
}

// countingStream is a streamConn that counts deadline calls.
type countingStream struct {
	streamConn
	deadlines int
}

func (c *countingStream) SetDeadline(time.Time) error      { c.deadlines++; return nil }
func (c *countingStream) SetReadDeadline(time.Time) error  { c.deadlines++; return nil }
func (c *countingStream) SetWriteDeadline(time.Time) error { c.deadlines++; return nil }

// TestCloseOneDeadline: Close with no reader sets one deadline for its
// close frame and the wait for the peer's, on either side, and still
// waits for the peer's.
func TestCloseOneDeadline(t *testing.T) {
	var body [2]byte
	body[0], body[1] = StatusNormalClosure>>8, StatusNormalClosure&0xFF
	cs := &countingStream{streamConn: streamConn{in: bytes.NewReader(serverFrame(true, opClose, body[:]))}}
	c := newWSConn(cs, cs)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if cs.deadlines != 1 || !c.peer.isClosed() {
		t.Errorf("client Close: %d deadline calls, peer's close read: %v; want 1, true", cs.deadlines, c.peer.isClosed())
	}
	ss := &countingStream{streamConn: streamConn{in: bytes.NewReader(clientFrame(true, opClose, body[:], 0x0A0B0C0D))}}
	s := newWSServerConn(ss, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ss.deadlines != 1 || !s.peer.isClosed() {
		t.Errorf("server Close: %d deadline calls, peer's close read: %v; want 1, true", ss.deadlines, s.peer.isClosed())
	}
}

// BenchmarkReadUpgrade: the plain 101 answer read by the quick path and by
// http.ReadResponse's.
func BenchmarkReadUpgrade(b *testing.B) {
	head := []byte(plainUpgrade())
	r := bytes.NewReader(head)
	for _, bc := range []struct {
		name string
		read func(io.Reader, string) ([]byte, error)
	}{{"path=quick", readUpgrade}, {"path=net-http", slowOnly}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(head)
				if _, err := bc.read(r, testWSKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// silentWSServer upgrades every connection and then reads (and discards)
// what the client sends, answering nothing but its close frame.
func silentWSServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				var pre []byte
				if n := br.Buffered(); n > 0 {
					pre, _ = br.Peek(n)
				}
				ws, err := upgrade(c, req.Header.Get("Sec-Websocket-Key"), pre)
				if err != nil {
					return
				}
				io.Copy(io.Discard, ws) // answers the close frame
			}()
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws/chat"
}

// TestDialWatchHandover: Dial's watch of ctx is taken over by a Handshake
// under the same ctx (one context.AfterFunc for both), and either way ctx
// bounds exactly the calls made under it.
func TestDialWatchHandover(t *testing.T) {
	url := silentWSServer(t)
	nk, err := keys.NewKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ClientConfig{NoiseKey: nk}
	dial := func(ctx context.Context) *wsConn {
		t.Helper()
		nc, err := Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws := nc.(*wsConn)
		if (ws.watch.Load() != nil) != (ctx.Done() != nil) {
			t.Fatalf("Dial under a ctx that can end: %v; watch handed over: %v", ctx.Done() != nil, ws.watch.Load() != nil)
		}
		return ws
	}

	// Same ctx, cancelled during the handshake: the handed-over watch
	// aborts the blocked read at once.
	ctx, cancel := context.WithCancel(context.Background())
	ws := dial(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := Handshake(ctx, ws, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("same ctx, cancelled: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if ws.watch.Load() != nil {
		t.Error("the watch is still handed over after the handshake")
	}

	// Dial's ctx ends after Dial: a Handshake under another ctx is not
	// affected (it times out on its own).
	ctx, cancel = context.WithCancel(context.Background())
	ws = dial(ctx)
	cancel()
	c2 := cfg
	c2.HandshakeTimeout = 100 * time.Millisecond
	if _, err := Handshake(context.Background(), ws, c2); !errors.Is(err, ErrHandshakeTimeout) {
		t.Errorf("Dial's ctx cancelled, Handshake under another: %v", err)
	}

	// The ctx ends between Dial and a Handshake under it: the handshake
	// fails at once with ctx's error.
	ctx, cancel = context.WithCancel(context.Background())
	ws = dial(ctx)
	cancel()
	time.Sleep(10 * time.Millisecond) // the watch's function has run, as a no-op
	start = time.Now()
	if _, err := Handshake(ctx, ws, cfg); !errors.Is(err, context.Canceled) {
		t.Errorf("ctx ended before the handshake: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}

	// A dialed connection closed without a handshake ends the watch; its
	// ctx ending later changes nothing.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	ws = dial(ctx)
	w := ws.watch.Load()
	ws.Close()
	if ws.watch.Load() != nil || w.stopAF() {
		t.Error("Close left Dial's watch registered")
	}

	// A dialed connection outlives its ctx (ctx bounds the dial only).
	ctx, cancel = context.WithCancel(context.Background())
	ws = dial(ctx)
	cancel()
	time.Sleep(10 * time.Millisecond)
	if _, err := ws.Write([]byte("still open")); err != nil {
		t.Errorf("write after Dial's ctx ended: %v", err)
	}
	ws.Close()
}

// newHandshakeIO is handshakeIO.init on a handshakeIO of its own.
func newHandshakeIO(ctx context.Context, nc net.Conn, dec *noise.Decoder, timeout time.Duration, w *ctxWatch) *handshakeIO {
	h := &handshakeIO{}
	h.init(ctx, nc, dec, timeout, w)
	return h
}
