package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/iotest"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/binxml/binxmltest"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

// streamConn is a net.Conn whose reads come from a fixed input and whose
// writes are recorded: the wire as a WebSocket peer would see it.
type streamConn struct {
	in      io.Reader
	out     bytes.Buffer
	writes  int
	discard bool
}

func (c *streamConn) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) {
	c.writes++
	if c.discard {
		return len(p), nil
	}
	return c.out.Write(p)
}
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

func newTestWS(in io.Reader) (*wsConn, *streamConn) {
	sc := &streamConn{in: in}
	return newWSConn(sc, sc), sc
}

// serverFrame builds a frame as a server sends it (unmasked).
func serverFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// clientFrames parses what a client wrote, the way a server does: every
// frame must be masked; it returns each frame's opcode and unmasked
// payload.
func clientFrames(t testing.TB, wire []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(wire) > 0 {
		if len(wire) < 2 {
			t.Fatalf("truncated client frame header % x", wire)
		}
		if wire[0]&0x80 == 0 || wire[0]&0x70 != 0 {
			t.Fatalf("client frame not final or with reserved bits: %#x", wire[0])
		}
		if wire[1]&0x80 == 0 {
			t.Fatal("client frame not masked")
		}
		n, pos := uint64(wire[1]&0x7F), 2
		switch n {
		case 126:
			n, pos = uint64(binary.BigEndian.Uint16(wire[2:])), 4
		case 127:
			n, pos = binary.BigEndian.Uint64(wire[2:]), 10
		}
		key := wire[pos : pos+4]
		pos += 4
		if uint64(len(wire)-pos) < n {
			t.Fatalf("client frame of %d bytes, %d on the wire", n, len(wire)-pos)
		}
		p := bytes.Clone(wire[pos : pos+int(n)])
		for i := range p {
			p[i] ^= key[i%4]
		}
		ops = append(ops, wire[0]&0x0F)
		payloads = append(payloads, p)
		wire = wire[pos+int(n):]
	}
	return ops, payloads
}

func TestWSReadFragmentsAndControl(t *testing.T) {
	var in bytes.Buffer
	in.Write(serverFrame(false, opBinary, []byte("hel")))
	in.Write(serverFrame(true, opPing, []byte("are you there")))
	in.Write(serverFrame(false, opContinuation, nil))
	in.Write(serverFrame(true, opContinuation, []byte("lo ")))
	in.Write(serverFrame(true, opPong, []byte("x")))
	big := bytes.Repeat([]byte{7}, 70000)
	in.Write(serverFrame(true, opBinary, big))
	in.Write(serverFrame(true, opClose, binary.BigEndian.AppendUint16(nil, StatusNormalClosure)))
	c, sc := newTestWS(&in)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if want := append([]byte("hello "), big...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
	ops, payloads := clientFrames(t, sc.out.Bytes())
	if len(ops) != 2 || ops[0] != opPong || string(payloads[0]) != "are you there" || ops[1] != opClose ||
		binary.BigEndian.Uint16(payloads[1]) != StatusNormalClosure {
		t.Fatalf("replies: ops %v payloads %q", ops, payloads)
	}
	// After the peer's close, nothing more is sent.
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after the close handshake: %v", err)
	}
}

func TestWSReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		wire []byte
		want error
		code int // close status sent back, 0 for none
	}{
		{"masked", []byte{0x82, 0x81, 1, 2, 3, 4, 5}, ErrWebSocketProtocol, 0},
		{"rsv", []byte{0xC2, 0x00}, ErrWebSocketProtocol, 0},
		{"opcode", []byte{0x83, 0x00}, ErrWebSocketProtocol, 0},
		{"text", serverFrame(true, opText, []byte("hi")), ErrWebSocketProtocol, StatusUnsupportedData},
		{"stray continuation", serverFrame(true, opContinuation, []byte("hi")), ErrWebSocketProtocol, StatusProtocolError},
		{"interleaved message", append(serverFrame(false, opBinary, []byte("a")), serverFrame(true, opBinary, []byte("b"))...), ErrWebSocketProtocol, StatusProtocolError},
		{"long ping", serverFrame(true, opPing, make([]byte, 126)), ErrWebSocketProtocol, 0},
		{"fragmented ping", serverFrame(false, opPing, nil), ErrWebSocketProtocol, 0},
		{"non-minimal length", []byte{0x82, 126, 0, 5, 1, 2, 3, 4, 5}, ErrWebSocketProtocol, 0},
		{"huge length", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, ErrWebSocketProtocol, 0},
		{"truncated header", []byte{0x82, 127, 0, 0}, io.ErrUnexpectedEOF, 0},
		{"truncated payload", []byte{0x82, 5, 1, 2}, io.ErrUnexpectedEOF, 0},
		{"one-byte close", serverFrame(true, opClose, []byte{3}), ErrWebSocketProtocol, StatusProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sc := newTestWS(bytes.NewReader(tc.wire))
			_, err := io.ReadAll(c)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			// The error sticks.
			if _, err2 := c.Read(make([]byte, 8)); !errors.Is(err2, tc.want) {
				t.Fatalf("second read: %v", err2)
			}
			ops, payloads := clientFrames(t, sc.out.Bytes())
			if tc.code != 0 && (len(ops) != 1 || ops[0] != opClose || int(binary.BigEndian.Uint16(payloads[0])) != tc.code) {
				t.Fatalf("sent %v %q, want close %d", ops, payloads, tc.code)
			}
		})
	}
}

func TestWSPeerCloseStatus(t *testing.T) {
	body := binary.BigEndian.AppendUint16(nil, 4000)
	c, sc := newTestWS(bytes.NewReader(serverFrame(true, opClose, append(body, "bye"...))))
	_, err := io.ReadAll(c)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
		t.Fatalf("err %v", err)
	}
	ops, payloads := clientFrames(t, sc.out.Bytes())
	if len(ops) != 1 || ops[0] != opClose || binary.BigEndian.Uint16(payloads[0]) != 4000 {
		t.Fatalf("close echo: %v %q", ops, payloads)
	}
	// Empty close: EOF, echoed without a body.
	c, sc = newTestWS(bytes.NewReader(serverFrame(true, opClose, nil)))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("empty close: %v", err)
	}
	if ops, payloads := clientFrames(t, sc.out.Bytes()); len(ops) != 1 || len(payloads[0]) != 0 {
		t.Fatalf("empty close echo: %v %q", ops, payloads)
	}
}

func TestWSWrite(t *testing.T) {
	for _, n := range []int{0, 1, 7, 125, 126, 1000, 0xFFFF, 0x10000, 200003} {
		c, sc := newTestWS(bytes.NewReader(nil))
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		orig := bytes.Clone(p)
		if k, err := c.Write(p); err != nil || k != n {
			t.Fatalf("Write(%d): %d, %v", n, k, err)
		}
		if !bytes.Equal(p, orig) {
			t.Fatal("Write modified its argument")
		}
		b := append(make([]byte, wsHeadroom), p...)
		if err := c.writeInPlace(b); err != nil {
			t.Fatal(err)
		}
		ops, payloads := clientFrames(t, sc.out.Bytes())
		if len(ops) != 2 || ops[0] != opBinary || ops[1] != opBinary || !bytes.Equal(payloads[0], orig) || !bytes.Equal(payloads[1], orig) {
			t.Fatalf("size %d: frames %v differ", n, ops)
		}
		if sc.writes != 2 {
			t.Fatalf("%d socket writes for 2 frames", sc.writes)
		}
	}
}

func TestMask(t *testing.T) {
	for n := range 80 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		key := uint32(0xA1B2C3D4)
		mask(b, key)
		var kb [4]byte
		binary.LittleEndian.PutUint32(kb[:], key)
		for i := range b {
			if b[i] != byte(i)^kb[i%4] {
				t.Fatalf("len %d: byte %d", n, i)
			}
		}
	}
}

// FuzzWSRead feeds arbitrary server bytes to the client framing, read in
// pieces of a size the input picks. It checks the payload against a
// whole-buffer parse, the error against the package's vocabulary, and
// that every reply the client wrote is a well-formed masked frame.
func FuzzWSRead(f *testing.F) {
	f.Add(byte(0), serverFrame(true, opBinary, []byte("hello")))
	f.Add(byte(3), append(serverFrame(false, opBinary, []byte("he")), serverFrame(true, opContinuation, []byte("llo"))...))
	f.Add(byte(1), append(serverFrame(true, opPing, []byte("p")), serverFrame(true, opBinary, bytes.Repeat([]byte{1}, 300))...))
	f.Add(byte(200), serverFrame(true, opBinary, bytes.Repeat([]byte{2}, 70000)))
	f.Add(byte(5), serverFrame(true, opClose, []byte{0x03, 0xE8, 'o', 'k'}))
	f.Add(byte(5), serverFrame(true, opClose, []byte{0x0F, 0xA0}))
	f.Add(byte(9), []byte{0x82, 0x81, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, chunk byte, wire []byte) {
		c, sc := newTestWS(bytes.NewReader(wire))
		var got []byte
		buf := make([]byte, int(chunk)+1)
		var err error
		for {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
			if len(got) > len(wire) {
				t.Fatalf("read %d payload bytes from %d wire bytes", len(got), len(wire))
			}
		}
		var ce *CloseError
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrWebSocketProtocol) && !errors.As(err, &ce) {
			t.Fatalf("unexpected error %v", err)
		}
		want, refErr := refParse(wire)
		if !bytes.HasPrefix(want, got) && !bytes.HasPrefix(got, want) {
			t.Fatalf("payload differs from a whole-buffer parse")
		}
		if (err == io.EOF) != (refErr == io.EOF) || (err == io.EOF && !bytes.Equal(got, want)) {
			t.Fatalf("stream read ended %v with %d bytes, whole-buffer parse %v with %d", err, len(got), refErr, len(want))
		}
		clientFrames(t, sc.out.Bytes())
	})
}

// refParse reads the data payload of wire in one pass, by the RFC's rules
// as tested above, ending at a close frame (io.EOF for a normal one) or the
// first violation.
func refParse(wire []byte) ([]byte, error) {
	var out []byte
	inMsg := false
	for {
		if len(wire) == 0 {
			if inMsg {
				return out, io.ErrUnexpectedEOF
			}
			return out, io.EOF // the stream ended between messages
		}
		if len(wire) < 2 {
			return out, io.ErrUnexpectedEOF
		}
		fin, op := wire[0]&0x80 != 0, wire[0]&0x0F
		if wire[0]&0x70 != 0 || wire[1]&0x80 != 0 {
			return out, ErrWebSocketProtocol
		}
		n, pos := uint64(wire[1]&0x7F), 2
		if n == 126 {
			if len(wire) < 4 {
				return out, io.ErrUnexpectedEOF
			}
			n, pos = uint64(binary.BigEndian.Uint16(wire[2:])), 4
			if n < 126 {
				return out, ErrWebSocketProtocol
			}
		} else if n == 127 {
			if len(wire) < 10 {
				return out, io.ErrUnexpectedEOF
			}
			n, pos = binary.BigEndian.Uint64(wire[2:]), 10
			if n>>63 != 0 || n <= 0xFFFF {
				return out, ErrWebSocketProtocol
			}
		}
		switch op {
		case opContinuation, opBinary, opText, opClose, opPing, opPong:
		default:
			return out, ErrWebSocketProtocol
		}
		if op >= opClose && (!fin || n > 125) {
			return out, ErrWebSocketProtocol
		}
		if op >= opClose && uint64(len(wire)-pos) < n {
			return out, io.ErrUnexpectedEOF
		}
		switch op {
		case opText:
			return out, ErrWebSocketProtocol
		case opBinary:
			if inMsg {
				return out, ErrWebSocketProtocol
			}
		case opContinuation:
			if !inMsg {
				return out, ErrWebSocketProtocol
			}
		case opClose:
			body := wire[pos : pos+int(n)]
			if len(body) == 1 {
				return out, ErrWebSocketProtocol
			}
			if len(body) == 0 {
				return out, io.EOF
			}
			switch binary.BigEndian.Uint16(body) {
			case StatusNormalClosure, StatusGoingAway, statusNoStatus:
				return out, io.EOF
			}
			return out, &CloseError{}
		}
		if op < opClose {
			inMsg = !fin
		}
		avail := uint64(len(wire) - pos)
		if avail < n {
			if op < opClose {
				out = append(out, wire[pos:]...)
			}
			return out, io.ErrUnexpectedEOF
		}
		if op < opClose {
			out = append(out, wire[pos:pos+int(n)]...)
		}
		wire = wire[pos+int(n):]
	}
}

// FuzzWSWrite checks that both send paths frame any payload so that a
// server's parse gets it back, in one socket write each.
func FuzzWSWrite(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("hello"))
	f.Add(bytes.Repeat([]byte{0xAB}, 126))
	f.Add(bytes.Repeat([]byte{0xCD}, 0x10001))
	f.Fuzz(func(t *testing.T, p []byte) {
		c, sc := newTestWS(bytes.NewReader(nil))
		orig := bytes.Clone(p)
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := c.writeInPlace(append(make([]byte, wsHeadroom), p...)); err != nil {
			t.Fatal(err)
		}
		ops, payloads := clientFrames(t, sc.out.Bytes())
		if sc.writes != 2 || len(ops) != 2 || !bytes.Equal(payloads[0], orig) || !bytes.Equal(payloads[1], orig) || !bytes.Equal(p, orig) {
			t.Fatalf("round trip failed: %d writes, %d frames", sc.writes, len(ops))
		}
	})
}

// benchConn returns a client Conn over this package's WebSocket whose
// socket discards what it is written.
func benchConn(tb testing.TB) *Conn {
	key := bytes.Repeat([]byte{0x42}, 32)
	ci, err := noise.NewCipher(key, key)
	if err != nil {
		tb.Fatal(err)
	}
	sc := &streamConn{in: bytes.NewReader(nil), discard: true}
	return newConn(newWSConn(sc, sc), ci, noise.NewDecoder(noise.DecoderConfig{}), keys.PublicKey{}, logger(nil))
}

// TestWriteNodeNoAllocs is the send path's promise: in steady state,
// encoding a stanza into the frame buffer, sealing and masking it in place
// and writing it allocates nothing.
func TestWriteNodeNoAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count (sync.Pool drops items under the race detector)")
	}
	c := benchConn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.CloseOnDone(ctx)
	for _, tc := range binxmltest.Corpus() {
		c.WriteNode(ctx, tc.Node) // warm the pool
		if a := testing.AllocsPerRun(50, func() {
			if err := c.WriteNode(ctx, tc.Node); err != nil {
				t.Fatal(err)
			}
		}); a != 0 && tc.Name != "message-64k" {
			// A 64 KiB stanza's buffer is past what the pool keeps.
			t.Errorf("%s: %.1f allocations per WriteNode", tc.Name, a)
		}
	}
}

// BenchmarkSend compares the send paths for each corpus stanza: Marshal +
// WriteFrame (the copy the client made before) and WriteNode.
func BenchmarkSend(b *testing.B) {
	for _, tc := range binxmltest.Corpus() {
		b.Run("case="+tc.Name+"/api=Marshal+WriteFrame", func(b *testing.B) {
			c := benchConn(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				p, err := binxml.Marshal(tc.Node)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.WriteFrame(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("case="+tc.Name+"/api=WriteNode", func(b *testing.B) {
			c := benchConn(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c.CloseOnDone(ctx)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.WriteNode(ctx, tc.Node); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDialBytesWithUpgrade: a server whose first frames arrive in the same
// read as its 101 answer (net/http has them buffered) is read in order, and
// the upgrade is checked (accept key, no unoffered extension).
func TestDialBytesWithUpgrade(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serve := func(extra string, accept func(key string) string) {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		if req.Header.Get("Origin") != Origin || req.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Errorf("upgrade request headers: %v", req.Header)
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n", accept(req.Header.Get("Sec-WebSocket-Key")), extra)
		b.Write(serverFrame(true, opBinary, []byte("early ")))
		b.Write(serverFrame(true, opBinary, []byte("bytes")))
		b.Write(serverFrame(true, opClose, binary.BigEndian.AppendUint16(nil, StatusNormalClosure)))
		c.Write(b.Bytes())
		io.Copy(io.Discard, c)
	}
	good := func(key string) string {
		sum := sha1.Sum([]byte(key + websocketGUID))
		return base64.StdEncoding.EncodeToString(sum[:])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws://" + ln.Addr().String() + "/ws/chat"

	go serve("", good)
	nc, err := Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(nc)
	if err != nil || string(got) != "early bytes" {
		t.Fatalf("read %q, %v", got, err)
	}
	nc.Close()

	go serve("", func(string) string { return "d3Jvbmc=" })
	if _, err := Dial(ctx, url, nil); !errors.Is(err, ErrUpgrade) {
		t.Fatalf("wrong accept key: %v", err)
	}
	go serve("Sec-WebSocket-Extensions: permessage-deflate\r\n", good)
	if _, err := Dial(ctx, url, nil); !errors.Is(err, ErrUpgrade) {
		t.Fatalf("unoffered extension: %v", err)
	}
}

// TestWSHeaderOneRead checks that a frame header is taken with one read
// (with what follows it kept for the payload and the next frame), and that
// the same stream delivered one byte per read gives the same bytes.
func TestWSHeaderOneRead(t *testing.T) {
	var in bytes.Buffer
	in.Write(serverFrame(true, opBinary, []byte("abc")))
	in.Write(serverFrame(true, opBinary, bytes.Repeat([]byte{1}, 200))) // 16-bit length
	in.Write(serverFrame(true, opPing, []byte("p")))
	in.Write(serverFrame(true, opBinary, bytes.Repeat([]byte{2}, 70000))) // 64-bit length
	in.Write(serverFrame(true, opClose, binary.BigEndian.AppendUint16(nil, StatusNormalClosure)))
	wire := in.Bytes()
	want := append(append([]byte("abc"), bytes.Repeat([]byte{1}, 200)...), bytes.Repeat([]byte{2}, 70000)...)

	for _, oneByte := range []bool{false, true} {
		var r io.Reader = bytes.NewReader(wire)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		cr := &countingReader{r: r}
		c, sc := newTestWS(cr)
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("oneByte=%v: ReadAll: %v", oneByte, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("oneByte=%v: read %d bytes, want %d", oneByte, len(got), len(want))
		}
		ops, payloads := clientFrames(t, sc.out.Bytes())
		if len(ops) != 2 || ops[0] != opPong || string(payloads[0]) != "p" || ops[1] != opClose {
			t.Fatalf("oneByte=%v: replies: ops %v payloads %q", oneByte, ops, payloads)
		}
		if oneByte && cr.reads < len(wire) {
			t.Fatalf("one byte per read: %d reads for %d bytes", cr.reads, len(wire))
		}
	}

	// A small frame and the close behind it: one read for the data frame's
	// header and payload, one for the close frame (and the EOF after it).
	var small bytes.Buffer
	small.Write(serverFrame(true, opBinary, []byte("hi")))
	cr := &countingReader{r: &small}
	c, _ := newTestWS(cr)
	var buf [16]byte
	if n, err := c.Read(buf[:]); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if cr.reads != 1 {
		t.Fatalf("%d reads for a 4-byte frame, want 1", cr.reads)
	}
}
