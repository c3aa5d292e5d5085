package transport

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
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
	var pre []byte
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		pre = append([]byte(nil), b...)
	}
	return pre, nil
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
	h := newHandshakeIO(context.Background(), nil, nil, time.Second)
	if h.stopAF != nil {
		t.Error("context.Background is watched")
	}
	if err := h.stop(); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if h := newHandshakeIO(ctx, nil, nil, time.Second); h.stopAF == nil {
		t.Error("a ctx that can end is not watched")
	} else if err := h.stop(); err != nil {
		t.Error(err)
	}
}

// TestControlFramesNoAllocs: a ping read and answered, and a control frame
// written, allocate nothing on either side.
func TestControlFramesNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffers")
	}
	buf := make([]byte, 64)

	cwire := append(serverFrame(true, opPing, []byte("are you there")), serverFrame(true, opBinary, []byte("ab"))...)
	cr := bytes.NewReader(cwire)
	c, csc := newTestWS(cr)
	csc.discard = true
	swire := append(clientFrame(true, opPing, []byte("are you there"), 0x01020304), clientFrame(true, opBinary, []byte("ab"), 0x05060708)...)
	sr := bytes.NewReader(swire)
	s, ssc := newTestWSServer(sr)
	ssc.discard = true

	for name, f := range map[string]func(){
		"client ping": func() {
			cr.Reset(cwire)
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ab" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}
		},
		"server ping": func() {
			sr.Reset(swire)
			if n, err := s.Read(buf); err != nil || string(buf[:n]) != "ab" {
				t.Fatalf("server read %q, %v", buf[:n], err)
			}
		},
		"client pong": func() {
			if err := c.writeControl(opPong, []byte("x")); err != nil {
				t.Fatal(err)
			}
		},
		"server pong": func() {
			if err := s.writeControl(opPong, []byte("x")); err != nil {
				t.Fatal(err)
			}
		},
	} {
		f() // the pool's first buffers
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocations, want 0", name, a)
		}
	}
	if csc.writes == 0 || ssc.writes == 0 {
		t.Error("no pong written")
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
