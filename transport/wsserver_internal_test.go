package transport

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func newTestWSServer(in io.Reader) (*wsServerConn, *streamConn) {
	sc := &streamConn{in: in}
	return newWSServerConn(sc, nil), sc
}

// clientFrame builds a frame as a client sends it: masked with key.
func clientFrame(fin bool, op byte, payload []byte, key uint32) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	hdr := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	hdr = binary.LittleEndian.AppendUint32(hdr, key)
	p := bytes.Clone(payload)
	mask(p, key)
	return append(hdr, p...)
}

// serverFrames parses what the server wrote, the way a client does: no
// frame may be masked.
func serverFrames(t testing.TB, wire []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(wire) > 0 {
		if len(wire) < 2 || wire[0]&0x80 == 0 || wire[0]&0x70 != 0 || wire[1]&0x80 != 0 {
			t.Fatalf("bad server frame header % x", wire[:min(len(wire), 2)])
		}
		n, pos := uint64(wire[1]&0x7F), 2
		switch n {
		case 126:
			n, pos = uint64(binary.BigEndian.Uint16(wire[2:])), 4
		case 127:
			n, pos = binary.BigEndian.Uint64(wire[2:]), 10
		}
		if uint64(len(wire)-pos) < n {
			t.Fatalf("server frame of %d bytes, %d on the wire", n, len(wire)-pos)
		}
		ops = append(ops, wire[0]&0x0F)
		payloads = append(payloads, bytes.Clone(wire[pos:pos+int(n)]))
		wire = wire[pos+int(n):]
	}
	return ops, payloads
}

func TestWSServerReadFragmentsAndControl(t *testing.T) {
	var in bytes.Buffer
	in.Write(clientFrame(false, opBinary, []byte("hel"), 0x01020304))
	in.Write(clientFrame(true, opPing, []byte("are you there"), 0xDEADBEEF))
	in.Write(clientFrame(false, opContinuation, nil, 7))
	in.Write(clientFrame(true, opContinuation, []byte("lo "), 0xFFFFFFFF))
	in.Write(clientFrame(true, opPong, []byte("x"), 9))
	big := make([]byte, 70001)
	for i := range big {
		big[i] = byte(i * 13)
	}
	in.Write(clientFrame(true, opBinary, big, 0xA1B2C3D4))
	in.Write(clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, StatusNormalClosure), 0x55667788))
	c, sc := newTestWSServer(&in)
	// Odd read sizes, so that unmasking resumes mid-key.
	var got []byte
	buf := make([]byte, 5)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	if want := append([]byte("hello "), big...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d (or bytes differ)", len(got), len(want))
	}
	ops, payloads := serverFrames(t, sc.out.Bytes())
	if len(ops) != 2 || ops[0] != opPong || string(payloads[0]) != "are you there" || ops[1] != opClose ||
		binary.BigEndian.Uint16(payloads[1]) != StatusNormalClosure {
		t.Fatalf("replies: ops %v payloads %q", ops, payloads)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after the close handshake: %v", err)
	}
}

func TestWSServerReadErrors(t *testing.T) {
	overLimit := []byte{0x82, 0x80 | 127}
	overLimit = binary.BigEndian.AppendUint64(overLimit, ReadLimit+1)
	overLimit = append(overLimit, 1, 2, 3, 4)
	for _, tc := range []struct {
		name string
		wire []byte
		want error
		code int // close status sent back, 0 for none
	}{
		{"unmasked", serverFrame(true, opBinary, []byte("hi")), ErrWebSocketProtocol, StatusProtocolError},
		{"rsv", []byte{0xC2, 0x80, 1, 2, 3, 4}, ErrWebSocketProtocol, StatusProtocolError},
		{"opcode", []byte{0x83, 0x80, 1, 2, 3, 4}, ErrWebSocketProtocol, StatusProtocolError},
		{"text", clientFrame(true, opText, []byte("hi"), 1), ErrWebSocketProtocol, StatusUnsupportedData},
		{"stray continuation", clientFrame(true, opContinuation, []byte("hi"), 1), ErrWebSocketProtocol, StatusProtocolError},
		{"interleaved message", append(clientFrame(false, opBinary, []byte("a"), 1), clientFrame(true, opBinary, []byte("b"), 2)...), ErrWebSocketProtocol, StatusProtocolError},
		{"long ping", clientFrame(true, opPing, make([]byte, 126), 3), ErrWebSocketProtocol, StatusProtocolError},
		{"fragmented ping", clientFrame(false, opPing, nil, 3), ErrWebSocketProtocol, StatusProtocolError},
		{"non-minimal length", []byte{0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ErrWebSocketProtocol, StatusProtocolError},
		{"huge length", []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, ErrWebSocketProtocol, StatusProtocolError},
		{"over the read limit", overLimit, ErrWebSocketProtocol, StatusMessageTooBig},
		{"truncated key", []byte{0x82, 0x85, 1, 2}, io.ErrUnexpectedEOF, 0},
		{"truncated payload", []byte{0x82, 0x85, 0, 0, 0, 0, 1, 2}, io.ErrUnexpectedEOF, 0},
		{"one-byte close", clientFrame(true, opClose, []byte{3}, 4), ErrWebSocketProtocol, StatusProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sc := newTestWSServer(bytes.NewReader(tc.wire))
			_, err := io.ReadAll(c)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if _, err2 := c.Read(make([]byte, 8)); !errors.Is(err2, tc.want) {
				t.Fatalf("second read: %v", err2)
			}
			ops, payloads := serverFrames(t, sc.out.Bytes())
			if tc.code != 0 && (len(ops) != 1 || ops[0] != opClose || int(binary.BigEndian.Uint16(payloads[0])) != tc.code) {
				t.Fatalf("sent %v %q, want close %d", ops, payloads, tc.code)
			}
		})
	}
}

func TestWSServerPeerCloseStatus(t *testing.T) {
	body := binary.BigEndian.AppendUint16(nil, 4000)
	c, sc := newTestWSServer(bytes.NewReader(clientFrame(true, opClose, append(body, "bye"...), 0x12345678)))
	_, err := io.ReadAll(c)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
		t.Fatalf("err %v", err)
	}
	ops, payloads := serverFrames(t, sc.out.Bytes())
	if len(ops) != 1 || ops[0] != opClose || binary.BigEndian.Uint16(payloads[0]) != 4000 {
		t.Fatalf("close echo: %v %q", ops, payloads)
	}
}

func TestWSServerWrite(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 0xFFFF, 0x10000, 200003} {
		c, sc := newTestWSServer(bytes.NewReader(nil))
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
		if err := c.writeInPlace(append(make([]byte, wsHeadroom), p...)); err != nil {
			t.Fatal(err)
		}
		ops, payloads := serverFrames(t, sc.out.Bytes())
		if len(ops) != 2 || ops[0] != opBinary || ops[1] != opBinary || !bytes.Equal(payloads[0], orig) || !bytes.Equal(payloads[1], orig) {
			t.Fatalf("size %d: frames %v differ", n, ops)
		}
	}
}

// TestAcceptUpgrade drives Accept with raw HTTP: a client that sends its
// first message right behind the request (before the 101) has it read,
// the 101 carries the right Sec-WebSocket-Accept, and the refusals answer
// with the status RFC 6455 names.
func TestAcceptUpgrade(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r)
		if err != nil {
			if !errors.Is(err, ErrBadUpgrade) {
				t.Errorf("Accept: %v", err)
			}
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Errorf("read: %v", err)
		}
		got <- b
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	do := func(t *testing.T, header string, extra []byte) (*http.Response, net.Conn) {
		t.Helper()
		nc, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		req := "GET /ws/chat HTTP/1.1\r\nHost: " + host + "\r\n" + header + "\r\n"
		if _, err := nc.Write(append([]byte(req), extra...)); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, nc
	}
	good := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nOrigin: https://web.whatsapp.com\r\n"
	t.Run("pipelined", func(t *testing.T) {
		resp, nc := do(t, good, clientFrame(true, opBinary, []byte("hello"), 0x0BADF00D))
		defer nc.Close()
		sum := sha1.Sum([]byte(key + websocketGUID))
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
		}
		if b := <-got; string(b) != "hello" {
			t.Fatalf("server read %q", b)
		}
	})
	t.Run("lenient", func(t *testing.T) {
		// No Connection or Version header, no Origin: accepted.
		resp, nc := do(t, "Upgrade: websocket\r\nSec-WebSocket-Key: "+key+"\r\n", clientFrame(true, opBinary, []byte("again"), 1))
		defer nc.Close()
		if resp.StatusCode != 101 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if b := <-got; string(b) != "again" {
			t.Fatalf("server read %q", b)
		}
	})
	for _, tc := range []struct {
		name, header string
		status       int
	}{
		{"no upgrade", "Sec-WebSocket-Key: " + key + "\r\n", http.StatusUpgradeRequired},
		{"version 8", strings.Replace(good, "Version: 13", "Version: 8", 1), http.StatusUpgradeRequired},
		{"no key", "Upgrade: websocket\r\nConnection: Upgrade\r\n", http.StatusBadRequest},
		{"foreign origin", strings.Replace(good, "web.whatsapp.com", "evil.example", 1), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, nc := do(t, tc.header, nil)
			nc.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// FuzzWSServerRead feeds arbitrary client bytes to the server framing, read
// in pieces of a size the input picks. It checks the payload against a
// whole-buffer parse, the error against the package's vocabulary, and that
// every reply the server wrote is a well-formed unmasked frame.
func FuzzWSServerRead(f *testing.F) {
	f.Add(byte(0), clientFrame(true, opBinary, []byte("hello"), 0x01020304))
	f.Add(byte(3), append(clientFrame(false, opBinary, []byte("he"), 5), clientFrame(true, opContinuation, []byte("llo"), 6)...))
	f.Add(byte(1), append(clientFrame(true, opPing, []byte("p"), 7), clientFrame(true, opBinary, bytes.Repeat([]byte{1}, 300), 8)...))
	f.Add(byte(200), clientFrame(true, opBinary, bytes.Repeat([]byte{2}, 70000), 9))
	f.Add(byte(5), clientFrame(true, opClose, []byte{0x03, 0xE8, 'o', 'k'}, 10))
	f.Add(byte(5), clientFrame(true, opClose, []byte{0x0F, 0xA0}, 11))
	f.Add(byte(9), serverFrame(true, opBinary, []byte("unmasked")))
	f.Fuzz(func(t *testing.T, chunk byte, wire []byte) {
		c, sc := newTestWSServer(bytes.NewReader(wire))
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
		want, refErr := refParseClient(wire)
		if !bytes.HasPrefix(want, got) && !bytes.HasPrefix(got, want) {
			t.Fatalf("payload differs from a whole-buffer parse")
		}
		if (err == io.EOF) != (refErr == io.EOF) || (err == io.EOF && !bytes.Equal(got, want)) {
			t.Fatalf("stream read ended %v with %d bytes, whole-buffer parse %v with %d", err, len(got), refErr, len(want))
		}
		serverFrames(t, sc.out.Bytes())
	})
}

// refParseClient reads the data payload of client bytes in one pass by
// RFC 6455's rules for a server, ending at a close frame (io.EOF for a
// normal one) or the first violation.
func refParseClient(wire []byte) ([]byte, error) {
	var out []byte
	inMsg := false
	var msgLen uint64
	for {
		if len(wire) == 0 {
			if inMsg {
				return out, io.ErrUnexpectedEOF
			}
			return out, io.EOF
		}
		if len(wire) < 2 {
			return out, io.ErrUnexpectedEOF
		}
		fin, op := wire[0]&0x80 != 0, wire[0]&0x0F
		if wire[0]&0x70 != 0 || wire[1]&0x80 == 0 {
			return out, ErrWebSocketProtocol
		}
		switch op {
		case opContinuation, opBinary, opText, opClose, opPing, opPong:
		default:
			return out, ErrWebSocketProtocol
		}
		n, ext := uint64(wire[1]&0x7F), 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		pos := 2 + ext + 4
		if len(wire) < pos {
			return out, io.ErrUnexpectedEOF
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(wire[2:]))
			if n < 126 {
				return out, ErrWebSocketProtocol
			}
		case 8:
			n = binary.BigEndian.Uint64(wire[2:])
			if n>>63 != 0 || n <= 0xFFFF {
				return out, ErrWebSocketProtocol
			}
		}
		key := wire[pos-4 : pos]
		if op >= opClose && (!fin || n > 125) {
			return out, ErrWebSocketProtocol
		}
		if op >= opClose && uint64(len(wire)-pos) < n {
			return out, io.ErrUnexpectedEOF
		}
		unmasked := func(b []byte) []byte {
			p := bytes.Clone(b)
			for i := range p {
				p[i] ^= key[i%4]
			}
			return p
		}
		switch op {
		case opText:
			return out, ErrWebSocketProtocol
		case opBinary:
			if inMsg {
				return out, ErrWebSocketProtocol
			}
			msgLen = 0
		case opContinuation:
			if !inMsg {
				return out, ErrWebSocketProtocol
			}
		case opClose:
			body := unmasked(wire[pos : pos+int(n)])
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
			if n > ReadLimit-msgLen {
				return out, ErrWebSocketProtocol
			}
			msgLen += n
			inMsg = !fin
		}
		avail := uint64(len(wire) - pos)
		if avail < n {
			if op < opClose {
				out = append(out, unmasked(wire[pos:])...)
			}
			return out, io.ErrUnexpectedEOF
		}
		if op < opClose {
			out = append(out, unmasked(wire[pos:pos+int(n)])...)
		}
		wire = wire[pos+int(n):]
	}
}

// countingReader counts the reads that reach it (each a system call on a
// socket).
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestWSServerReadAhead: a frame header is read with one read, together
// with what follows it, so a small frame costs one read (it cost three:
// two header bytes, the rest of the header, the payload; then two: the
// header's 14 bytes, the payload); frames are read the same whatever the
// reads deliver, one byte at a time or several frames at once.
func TestWSServerReadAhead(t *testing.T) {
	var in bytes.Buffer
	in.Write(clientFrame(true, opBinary, []byte("8 bytes!"), 0x01020304))
	in.Write(clientFrame(true, opBinary, bytes.Repeat([]byte("x"), 300), 0x0A0B0C0D))
	cr := &countingReader{r: bytes.NewReader(in.Bytes())}
	c, _ := newTestWSServer(cr)
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if want := "8 bytes!" + strings.Repeat("x", 300); err != nil || string(buf[:n]) != want {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if cr.reads != 1 {
		t.Errorf("two frames that came together took %d reads", cr.reads)
	}

	// Every read pattern reads the same.
	var frames bytes.Buffer
	frames.Write(clientFrame(false, opBinary, []byte("a"), 1))
	frames.Write(clientFrame(true, opPing, nil, 2))
	frames.Write(clientFrame(true, opContinuation, []byte("bc"), 3))
	frames.Write(clientFrame(true, opBinary, nil, 4))
	frames.Write(clientFrame(true, opBinary, make([]byte, 200), 5))
	frames.Write(clientFrame(true, opPing, []byte("p"), 6))
	frames.Write(clientFrame(true, opBinary, []byte("defghijklmnopq"), 7))
	frames.Write(clientFrame(true, opClose, binary.BigEndian.AppendUint16(nil, StatusNormalClosure), 8))
	want := "abc" + string(make([]byte, 200)) + "defghijklmnopq"
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"whole":  func(r io.Reader) io.Reader { return r },
		"bytes":  iotest.OneByteReader,
		"halves": iotest.HalfReader,
	} {
		c, sc := newTestWSServer(wrap(bytes.NewReader(frames.Bytes())))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != want {
			t.Errorf("%s: read %q, %v", name, got, err)
		}
		if ops, _ := serverFrames(t, sc.out.Bytes()); len(ops) != 3 {
			t.Errorf("%s: answered %v, want pong, pong, close", name, ops)
		}
	}
	// Cut inside a header: an unexpected EOF, as before.
	whole := clientFrame(true, opBinary, []byte("xyz"), 9)
	for cut := 1; cut < 6; cut++ {
		c, _ := newTestWSServer(iotest.OneByteReader(bytes.NewReader(whole[:cut])))
		if _, err := c.Read(buf); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut after %d bytes: %v", cut, err)
		}
	}
	c, _ = newTestWSServer(bytes.NewReader(nil))
	if _, err := c.Read(buf); err != io.EOF {
		t.Errorf("no frame at all: %v", err)
	}
}
