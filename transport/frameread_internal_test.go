package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
)

// scriptedReader delivers its chunks one per read (a read smaller than
// the chunk leaves the rest of it for the next), as a socket delivers
// what arrived; then io.EOF. It counts reads.
type scriptedReader struct {
	chunks [][]byte
	reads  int
}

func (s *scriptedReader) Read(p []byte) (int, error) {
	s.reads++
	for len(s.chunks) > 0 && len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	return n, nil
}

// wsSide is one end's reader under test: frames as its peer sends them
// (masked from a client), the reader over a given input, and the control
// frames it answered.
type wsSide struct {
	name    string
	frame   func(fin bool, op byte, payload []byte) []byte
	reader  func(in io.Reader) (io.Reader, *streamConn)
	answers func(t testing.TB, wire []byte) ([]byte, [][]byte)
}

var wsSides = []wsSide{
	{
		name:  "client",
		frame: serverFrame,
		reader: func(in io.Reader) (io.Reader, *streamConn) {
			c, sc := newTestWS(in)
			return c, sc
		},
		answers: clientFrames,
	},
	{
		name: "server",
		frame: func(fin bool, op byte, payload []byte) []byte {
			return clientFrame(fin, op, payload, 0x9A3C5E71)
		},
		reader: func(in io.Reader) (io.Reader, *streamConn) {
			c, sc := newTestWSServer(in)
			return c, sc
		},
		answers: serverFrames,
	},
}

// TestWSFrameOneRead: a frame that arrives whole is read with one read,
// header and payload together, into the reader's buffer (it took two: the
// header's 14 bytes, then the rest of the payload).
func TestWSFrameOneRead(t *testing.T) {
	for _, s := range wsSides {
		for _, size := range []int{1, 100, 300, 70000} {
			payload := bytes.Repeat([]byte{0xA5}, size)
			sr := &scriptedReader{chunks: [][]byte{s.frame(true, opBinary, payload)}}
			r, _ := s.reader(sr)
			buf := make([]byte, size+16)
			n, err := r.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], payload) {
				t.Fatalf("%s, %d bytes: read %d bytes, %v", s.name, size, n, err)
			}
			if sr.reads != 1 {
				t.Errorf("%s: a frame of %d payload bytes took %d reads, want 1", s.name, size, sr.reads)
			}
		}
	}
}

// TestWSFramesInOneRead: what came behind a frame in the same read (the
// next frame, whole or cut anywhere, control frames among them) is neither
// lost nor read again, and a control frame is answered as it comes.
func TestWSFramesInOneRead(t *testing.T) {
	for _, s := range wsSides {
		a := s.frame(true, opBinary, []byte("first frame"))
		ping := s.frame(true, opPing, []byte("ping payload, twenty-nine by"))
		b := s.frame(false, opBinary, bytes.Repeat([]byte{'b'}, 200))
		cont := s.frame(true, opContinuation, []byte("end"))
		closing := s.frame(true, opClose, binary.BigEndian.AppendUint16(nil, StatusNormalClosure))
		wire := bytes.Join([][]byte{a, ping, b, cont, closing}, nil)
		want := "first frame" + string(bytes.Repeat([]byte{'b'}, 200)) + "end"
		// Two reads' worth, cut at every byte, read into buffers of
		// several sizes (a small one takes the old path).
		for cut := 0; cut <= len(wire); cut++ {
			for _, bufSize := range []int{7, 14, 64, 4096} {
				sr := &scriptedReader{chunks: [][]byte{bytes.Clone(wire[:cut]), bytes.Clone(wire[cut:])}}
				r, sc := s.reader(sr)
				got, err := readAllWith(r, bufSize)
				if err != nil || string(got) != want {
					t.Fatalf("%s, cut at %d, buffer %d: read %q, %v", s.name, cut, bufSize, got, err)
				}
				ops, payloads := s.answers(t, sc.out.Bytes())
				if len(ops) != 2 || ops[0] != opPong || string(payloads[0]) != "ping payload, twenty-nine by" || ops[1] != opClose {
					t.Fatalf("%s, cut at %d, buffer %d: answered %v %q", s.name, cut, bufSize, ops, payloads)
				}
				if bufSize == 4096 && sr.reads > 3 {
					// At most: what the first read brought, the rest of
					// a header or control frame cut there, then EOF.
					t.Errorf("%s, cut at %d: %d reads", s.name, cut, sr.reads)
				}
			}
		}
	}
}

// TestWSReadStopsAtFrameEnd: a Read returns the payload it has rather than
// wait for more. Data frames that came together are returned together; a
// header cut short waits for the next Read; a control frame cut short is
// completed first (it cannot wait in the 14-byte read-ahead) with reads of
// exactly what it lacks, so that what follows it stays in the socket.
func TestWSReadStopsAtFrameEnd(t *testing.T) {
	for _, s := range wsSides {
		a := s.frame(true, opBinary, []byte("aaaa"))
		b := s.frame(true, opBinary, []byte("bbbbbbbb"))
		ping := s.frame(true, opPing, bytes.Repeat([]byte{'p'}, 100))
		c := s.frame(true, opBinary, []byte("cc"))
		buf := make([]byte, 1024)

		// a and b, then half of c's header.
		sr := &scriptedReader{chunks: [][]byte{bytes.Join([][]byte{a, b, c[:1]}, nil), c[1:]}}
		r, _ := s.reader(sr)
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "aaaabbbbbbbb" || sr.reads != 1 {
			t.Fatalf("%s: read %q, %v after %d reads", s.name, buf[:n], err, sr.reads)
		}
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "cc" || sr.reads != 2 {
			t.Fatalf("%s: read %q, %v after %d reads", s.name, buf[:n], err, sr.reads)
		}

		// a, then a ping cut 20 bytes into its payload.
		rest := append(bytes.Clone(ping[len(ping)-80:]), c...)
		sr = &scriptedReader{chunks: [][]byte{append(bytes.Clone(a), ping[:len(ping)-80]...), rest}}
		r, sc := s.reader(sr)
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "aaaa" {
			t.Fatalf("%s: read %q, %v", s.name, buf[:n], err)
		}
		if ops, payloads := s.answers(t, sc.out.Bytes()); len(ops) != 1 || ops[0] != opPong || len(payloads[0]) != 100 {
			t.Fatalf("%s: answered %v", s.name, ops)
		}
		if left := len(sr.chunks[0]); left != len(c) {
			t.Fatalf("%s: %d bytes left in the socket, want the %d of the next frame", s.name, left, len(c))
		}
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "cc" {
			t.Fatalf("%s: read %q, %v", s.name, buf[:n], err)
		}

		// a and a close frame in one read: a's payload first, then EOF.
		closing := s.frame(true, opClose, binary.BigEndian.AppendUint16(nil, StatusGoingAway))
		sr = &scriptedReader{chunks: [][]byte{append(bytes.Clone(a), closing...)}}
		r, _ = s.reader(sr)
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "aaaa" {
			t.Fatalf("%s: read %q, %v", s.name, buf[:n], err)
		}
		if n, err := r.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("%s: after the close frame: %d bytes, %v", s.name, n, err)
		}

		// a and a protocol violation in one read: a's payload, then the
		// error.
		bad := s.frame(true, 0x3, nil)
		sr = &scriptedReader{chunks: [][]byte{append(bytes.Clone(a), bad...)}}
		r, _ = s.reader(sr)
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "aaaa" {
			t.Fatalf("%s: read %q, %v", s.name, buf[:n], err)
		}
		if _, err := r.Read(buf); !errors.Is(err, ErrWebSocketProtocol) {
			t.Fatalf("%s: after a reserved opcode: %v", s.name, err)
		}

		// A header that comes alone: its payload is read into the buffer.
		sr = &scriptedReader{chunks: [][]byte{b[:len(b)-8], b[len(b)-8:]}}
		r, _ = s.reader(sr)
		if n, err := r.Read(buf); err != nil || string(buf[:n]) != "bbbbbbbb" || sr.reads != 2 {
			t.Fatalf("%s: read %q, %v after %d reads", s.name, buf[:n], err, sr.reads)
		}
	}
}

// readAllWith reads r to its end with reads of bufSize bytes; io.EOF is
// its end.
func readAllWith(r io.Reader, bufSize int) ([]byte, error) {
	var got []byte
	buf := make([]byte, bufSize)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

// countConn counts the reads that reach a net.Conn.
type countConn struct {
	net.Conn
	mu    sync.Mutex
	reads int
}

func (c *countConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *countConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestHandshakeOneReadPerMessage: over this package's WebSocket, each
// handshake message is read with one read (two before: the frame header's
// 14 bytes, then the rest), on both ends.
func TestHandshakeOneReadPerMessage(t *testing.T) {
	kp := func() keys.KeyPair {
		k, err := keys.NewKeyPair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	root, server, client, inter := kp(), kp(), kp(), kp()
	now := time.Now()
	chain, err := noise.NewCertChain(rand.Reader, root.Private, inter, server.Public, noise.CertOptions{
		IntermediateSerial: 7, LeafSerial: 1, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	cp, sp := net.Pipe()
	cc, scc := &countConn{Conn: cp}, &countConn{Conn: sp}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		c   *Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, _, err := ServerHandshake(ctx, newWSServerConn(scc, nil), ServerConfig{Static: server, CertChain: chain})
		res <- result{c, err}
	}()
	cws := newWSConn(cc, cc)
	c, err := Handshake(ctx, cws, ClientConfig{NoiseKey: client, RootKey: root.Public, Payload: bytes.Repeat([]byte{'x'}, 300)})
	if err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Client: the server hello. Server: the client hello (with the
	// intro) and the client finish.
	if got := cc.count(); got != 1 {
		t.Errorf("client: %d reads in the handshake, want 1", got)
	}
	if got := scc.count(); got != 2 {
		t.Errorf("server: %d reads in the handshake, want 2", got)
	}
	go r.c.WriteFrame(ctx, []byte("first stanza"))
	if f, err := c.ReadFrame(); err != nil || string(f) != "first stanza" {
		t.Fatalf("ReadFrame = %q, %v", f, err)
	}
	// No closing handshake: over a synchronous pipe, two Closes would
	// each wait for the other to read their close frame.
	cp.Close()
	sp.Close()
}
