package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// readAhead holds bytes read from a WebSocket stream and not yet used,
// buf[off:end]. Both ends read a frame header with one read of up to 14
// bytes (not two or three, each a system call); what came behind it in
// that read (payload, even the next frame) waits here. No other buffer is
// held while idle.
//
// A Read with a buffer of its own reads the header straight into that
// buffer instead, together with as much payload as came (readDirect);
// while it runs, ext is the part of that read not yet used, so that a
// control frame in it is read through take like any other. ext is nil
// between reads.
type readAhead struct {
	buf      [wsHeadroom]byte
	off, end uint8
	ext      []byte
}

// buffered reports whether bytes are waiting.
func (a *readAhead) buffered() bool { return a.off < a.end || len(a.ext) > 0 }

// take copies waiting bytes into p and returns how many.
func (a *readAhead) take(p []byte) int {
	if a.off < a.end {
		n := copy(p, a.buf[a.off:a.end])
		a.off += uint8(n)
		return n
	}
	n := copy(p, a.ext)
	a.ext = a.ext[n:]
	return n
}

// fill makes n bytes (at most len(buf)) available, reading with read up
// to buf's room. Errors are io.ReadFull's: io.EOF only when nothing was
// read.
func (a *readAhead) fill(n int, read func([]byte) (int, error)) error {
	have := int(a.end - a.off)
	if have >= n {
		return nil
	}
	if a.off > 0 {
		copy(a.buf[:], a.buf[a.off:a.end])
		a.off, a.end = 0, uint8(have)
	}
	for int(a.end) < n {
		m, err := read(a.buf[a.end:])
		a.end += uint8(m)
		if err != nil {
			if int(a.end) >= n {
				return nil // the error comes again on the next read
			}
			if errors.Is(err, io.EOF) && a.end > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	opcode byte
	length uint64
	key    uint32 // a client frame's mask key, little-endian as mask takes it
}

// parseHeader checks and parses the frame header at the start of b. size
// is the header's length, or, when b holds only part of it, 0 (with
// whatever checks b allows already made). A client's frames are masked
// and a server's are not (RFC 6455 §5.1: the receiver MUST close the
// connection otherwise; every WhatsApp client masks, and the server
// refused unmasked frames before, with coder/websocket).
func parseHeader(b []byte, fromClient bool) (h frameHeader, size int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h = frameHeader{fin: b[0]&0x80 != 0, opcode: b[0] & 0x0F}
	if b[0]&0x70 != 0 {
		return h, 0, protoErr("reserved bits set (no extension was negotiated)")
	}
	if masked := b[1]&0x80 != 0; masked != fromClient {
		if fromClient {
			return h, 0, protoErr("unmasked frame from the client")
		}
		return h, 0, protoErr("masked frame from the server")
	}
	switch h.opcode {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return h, 0, protoErr(fmt.Sprintf("reserved opcode %#x", h.opcode))
	}
	ext := 0
	switch b[1] & 0x7F {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	size = 2 + ext
	if fromClient {
		size += 4
	}
	if len(b) < size {
		return h, 0, nil
	}
	switch ext {
	case 0:
		h.length = uint64(b[1] & 0x7F)
	case 2:
		h.length = uint64(binary.BigEndian.Uint16(b[2:4]))
		if h.length < 126 {
			return h, 0, protoErr("length not in its shortest form")
		}
	case 8:
		h.length = binary.BigEndian.Uint64(b[2:10])
		if h.length>>63 != 0 {
			return h, 0, protoErr("length with its top bit set")
		}
		if h.length <= 0xFFFF {
			return h, 0, protoErr("length not in its shortest form")
		}
	}
	if fromClient {
		h.key = binary.LittleEndian.Uint32(b[2+ext:])
	}
	if h.opcode >= opClose && (!h.fin || h.length > 125) {
		return h, 0, protoErr("fragmented or oversized control frame")
	}
	return h, size, nil
}

// readHeader reads and checks a frame header, with one read when the
// read-ahead is empty. Errors other than the stream's wrap
// ErrWebSocketProtocol; io.EOF only when the stream ended between frames.
func (a *readAhead) readHeader(read func([]byte) (int, error), fromClient bool) (frameHeader, error) {
	need := 2
	for {
		if err := a.fill(need, read); err != nil {
			if need > 2 {
				err = unexpectedEOF(err)
			}
			return frameHeader{}, err
		}
		h, size, err := parseHeader(a.buf[a.off:a.end], fromClient)
		if err != nil || size > 0 {
			a.off += uint8(size)
			return h, err
		}
		// The length or the mask key is still to come: ask for all of
		// the header.
		need = int(a.end-a.off) + 1
	}
}

// frameStream is one end's read side as readDirect drives it.
type frameStream interface {
	// readRaw reads from the stream.
	readRaw(p []byte) (int, error)
	// left returns the payload bytes left in the current data frame.
	left() uint64
	// consumed accounts b, the next payload bytes of the current data
	// frame, read into the caller's buffer (unmasking them).
	consumed(b []byte)
	// frame acts on a header read (its payload, if any, follows in the
	// read-ahead): a data frame becomes current, a control frame is
	// handled whole.
	frame(h frameHeader) error
	// headerErr turns an error reading a header into the one returned.
	headerErr(err error) error
}

// readDirect serves a Read into p (at least wsHeadroom bytes) that starts
// at a frame boundary: the header is read into p together with whatever
// payload (and following frames) the same read brings, so a frame that
// arrives whole costs one read, not two (header, then payload), without
// a buffer of the connection's own. Headers are removed and the payload
// of every data frame that came is moved to the front of p; control
// frames among them are handled as they come. Only a partial header
// (under 14 bytes) is left over for the next read, in buf; a control
// frame cut short is completed with reads of its own. It reads only while
// it has nothing for the caller, and returns an error only with n = 0:
// one met after payload bytes is left in err for the caller to make
// sticky and report on the next read. n = 0 with no error means a data
// frame's header came without payload.
func (a *readAhead) readDirect(p []byte, s frameStream, fromClient bool) (n int, err error) {
	have := a.take(p) // a partial header left by the last read, if any
	a.off, a.end = 0, 0
	r := 0 // next byte of p[:have] to parse; n ≤ r
	for {
		if left := s.left(); left > 0 {
			m := int(min(left, uint64(have-r)))
			copy(p[n:], p[r:r+m])
			s.consumed(p[n : n+m])
			n, r = n+m, r+m
			if r == have {
				return n, nil
			}
			continue
		}
		if r == have && n > 0 {
			return n, nil
		}
		h, size, perr := parseHeader(p[r:have], fromClient)
		if perr != nil {
			return n, s.headerErr(perr)
		}
		if size == 0 {
			if n > 0 {
				a.end = uint8(copy(a.buf[:], p[r:have]))
				return n, nil
			}
			// Nothing for the caller yet: read the rest of the header,
			// and what follows it.
			have = copy(p, p[r:have])
			r = 0
			m, rerr := s.readRaw(p[have:])
			if m == 0 && rerr != nil {
				if errors.Is(rerr, io.EOF) && have > 0 {
					rerr = io.ErrUnexpectedEOF
				}
				return 0, s.headerErr(rerr)
			}
			// With m > 0 an error comes again at the next read.
			have += m
			continue
		}
		r += size
		a.ext = p[r:have]
		ferr := s.frame(h)
		r = have - len(a.ext)
		a.ext = nil
		if ferr != nil {
			return n, ferr
		}
	}
}
