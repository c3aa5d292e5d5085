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
type readAhead struct {
	buf      [wsHeadroom]byte
	off, end uint8
}

// buffered reports whether bytes are waiting.
func (a *readAhead) buffered() bool { return a.off < a.end }

// take copies waiting bytes into p and returns how many.
func (a *readAhead) take(p []byte) int {
	n := copy(p, a.buf[a.off:a.end])
	a.off += uint8(n)
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

// readHeader reads and checks a frame header. A client's frames are
// masked and a server's are not (RFC 6455 §5.1: the receiver MUST close
// the connection otherwise; every WhatsApp client masks, and the server
// refused unmasked frames before, with coder/websocket). Errors other
// than the stream's wrap ErrWebSocketProtocol; io.EOF only when the stream
// ended between frames.
func (a *readAhead) readHeader(read func([]byte) (int, error), fromClient bool) (frameHeader, error) {
	if err := a.fill(2, read); err != nil {
		return frameHeader{}, err
	}
	b := a.buf[a.off:a.end]
	h := frameHeader{fin: b[0]&0x80 != 0, opcode: b[0] & 0x0F}
	if b[0]&0x70 != 0 {
		return h, protoErr("reserved bits set (no extension was negotiated)")
	}
	if masked := b[1]&0x80 != 0; masked != fromClient {
		if fromClient {
			return h, protoErr("unmasked frame from the client")
		}
		return h, protoErr("masked frame from the server")
	}
	switch h.opcode {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return h, protoErr(fmt.Sprintf("reserved opcode %#x", h.opcode))
	}
	ext := 0
	switch b[1] & 0x7F {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	size := 2 + ext
	if fromClient {
		size += 4
	}
	if err := a.fill(size, read); err != nil {
		return h, unexpectedEOF(err)
	}
	b = a.buf[a.off:a.end]
	a.off += uint8(size)
	switch ext {
	case 0:
		h.length = uint64(b[1] & 0x7F)
	case 2:
		h.length = uint64(binary.BigEndian.Uint16(b[2:4]))
		if h.length < 126 {
			return h, protoErr("length not in its shortest form")
		}
	case 8:
		h.length = binary.BigEndian.Uint64(b[2:10])
		if h.length>>63 != 0 {
			return h, protoErr("length with its top bit set")
		}
		if h.length <= 0xFFFF {
			return h, protoErr("length not in its shortest form")
		}
	}
	if fromClient {
		h.key = binary.LittleEndian.Uint32(b[2+ext:])
	}
	if h.opcode >= opClose && (!h.fin || h.length > 125) {
		return h, protoErr("fragmented or oversized control frame")
	}
	return h, nil
}
