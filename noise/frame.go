package noise

import (
	"bytes"
	"fmt"
	"io"
)

// Connection headers. The client sends one, once, before its first frame;
// the last byte is the binary-node dictionary version. The 4 bytes are the
// Noise prologue.
var (
	HeaderV3 = [4]byte{'W', 'A', 6, 3}
	HeaderV2 = [4]byte{'W', 'A', 6, 2}
)

// edgeMagic starts the optional edge-routing pre-intro that may precede
// the connection header.
var edgeMagic = [4]byte{'E', 'D', 0, 1}

const (
	// MaxFrameSize is the largest frame body: lengths are 3 bytes and
	// peers refuse 2^24.
	MaxFrameSize = 1<<24 - 1
	// FrameHeaderSize is the size of the length prefix of every frame.
	FrameHeaderSize = 3
)

// AppendFrame appends one frame to dst:
//
//	+---------------------+------------------+
//	| length: 3 bytes, BE | body: length     |
//	+---------------------+------------------+
func AppendFrame(dst, body []byte) ([]byte, error) {
	if len(body) > MaxFrameSize {
		return dst, &FrameError{Length: len(body), Limit: MaxFrameSize}
	}
	n := len(body)
	dst = append(dst, byte(n>>16), byte(n>>8), byte(n))
	return append(dst, body...), nil
}

// AppendIntro appends what a client sends once, before its first frame:
//
//	[ 'E' 'D' 00 01 | routing length: 3 bytes BE | routing ]   only if routing != nil
//	'W' 'A' 06 <dictionary version>
//
// Only the 4-byte header is the Noise prologue; the routing bytes come from
// an earlier session's <edge_routing> stanza.
func AppendIntro(dst []byte, header [4]byte, routing []byte) ([]byte, error) {
	if routing != nil {
		if len(routing) > MaxFrameSize {
			return dst, &FrameError{Length: len(routing), Limit: MaxFrameSize}
		}
		dst = append(dst, edgeMagic[:]...)
		var err error
		if dst, err = AppendFrame(dst, routing); err != nil {
			return dst, err
		}
	}
	return append(dst, header[:]...), nil
}

// frameLen reads the 3-byte big-endian length at the start of b.
func frameLen(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }

// validHeader reports whether h is a header this package accepts.
func validHeader(h [4]byte) bool { return h == HeaderV3 || h == HeaderV2 }

// Decoder reassembles frames from a byte stream: bytes go in with Write
// (any split: several frames at once, or a frame in pieces) and complete
// bodies come out of Next. The zero value decodes plain frames with the
// MaxFrameSize limit; see NewDecoder for the server's first-bytes mode.
//
// A Decoder is not safe for concurrent use. Errors are sticky.
type Decoder struct {
	buf   []byte // unread input starts at buf[off]
	off   int
	limit int
	last  int // length of the last body Next returned
	prev  int // and of the one before it

	intro     bool // still expecting the intro
	header    [4]byte
	hasHeader bool
	routing   []byte

	err error
}

// DecoderConfig configures NewDecoder.
type DecoderConfig struct {
	// Intro makes the decoder consume the client's connection intro
	// (optional ED pre-intro, then WA 06 02 or WA 06 03) before the first
	// frame. Servers set it; clients do not.
	Intro bool
	// MaxFrame limits body (and routing) lengths; 0 means MaxFrameSize.
	// Larger values are clamped to MaxFrameSize.
	MaxFrame int
}

// NewDecoder returns a decoder configured by cfg.
func NewDecoder(cfg DecoderConfig) *Decoder {
	return &Decoder{intro: cfg.Intro, limit: cfg.MaxFrame}
}

func (d *Decoder) maxFrame() int {
	if d.limit <= 0 || d.limit > MaxFrameSize {
		return MaxFrameSize
	}
	return d.limit
}

// idleBufSize is the largest buffer a drained Decoder keeps after a lone
// big frame (see reclaim).
const idleBufSize = 4 << 10

// Write buffers p. It never fails unless an earlier call found bad input.
func (d *Decoder) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	d.reclaim()
	if d.off > 0 && len(d.buf)+len(p) > cap(d.buf) {
		n := copy(d.buf, d.buf[d.off:])
		d.buf, d.off = d.buf[:n], 0
	}
	d.buf = append(d.buf, p...)
	return len(p), nil
}

// FillSize is the room Fill makes for a read when no frame in progress
// says how much is coming. An idle connection blocks in a read with this
// much buffer, so it is small; a frame's length, once read, makes room for
// the whole frame at once.
const FillSize = 1 << 10

// minFill is the least room Fill reads into before it makes more.
const minFill = 512

// Fill reads once from r straight into the decoder's buffer, so bytes
// from the connection are copied once, not through a caller's buffer
// first. It makes room for the rest of a frame whose length has been read
// (once that length passes the limit check), else for FillSize bytes. Like
// Write, it invalidates bodies returned by Next. A read error is returned
// as is and leaves what was read buffered.
func (d *Decoder) Fill(r io.Reader) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	d.reclaim()
	want := 0 // the rest of a frame in progress
	if in := d.buf[d.off:]; !d.intro && len(in) >= FrameHeaderSize {
		if n := frameLen(in); n <= d.maxFrame() {
			want = FrameHeaderSize + n - len(in)
		}
	}
	if room := cap(d.buf) - len(d.buf); room < want || room < minFill {
		d.realloc(d.Buffered() + max(want, FillSize))
	}
	n, err := r.Read(d.buf[len(d.buf):cap(d.buf)])
	d.buf = d.buf[:len(d.buf)+n]
	return n, err
}

// Release drops the decoder's buffer when everything in it has been
// consumed, so a connection waiting for its next frame holds none; Fill
// makes a new one when bytes come. Like Fill it invalidates bodies
// returned by Next. It does nothing while bytes are buffered.
func (d *Decoder) Release() {
	if d.Buffered() == 0 {
		d.buf, d.off = nil, 0
	}
}

// Grow makes room for n more bytes (capped at the frame limit plus its
// header), so a reader that knows how much is coming, e.g. from a
// WebSocket frame header, fills the buffer in one allocation. Like Fill it
// invalidates bodies returned by Next.
func (d *Decoder) Grow(n int) {
	if d.err != nil {
		return
	}
	d.reclaim()
	// At least minFill, so that Fill reads into this room rather than make
	// its own.
	n = max(min(n, FrameHeaderSize+d.maxFrame()), minFill)
	if cap(d.buf)-len(d.buf) < n {
		d.realloc(d.Buffered() + n)
	}
}

// realloc moves the unread bytes to the front of a new buffer of capacity
// size.
func (d *Decoder) realloc(size int) {
	nb := make([]byte, d.Buffered(), size)
	copy(nb, d.buf[d.off:])
	d.buf, d.off = nb, 0
}

// reclaim drops consumed bytes. A drained buffer is reused if it is small
// or the last two frames were both big (a run of big frames should not
// allocate one per frame); a buffer grown for a lone big frame (a pre-key
// upload, a history blob) is dropped, since an idle connection then waits
// for its next small stanza with it: on a server holding many idle
// connections that would be most of their memory. Otherwise unread bytes
// move to the front when that makes room.
func (d *Decoder) reclaim() {
	switch {
	case d.off > 0 && d.off == len(d.buf):
		if cap(d.buf) > idleBufSize && !(d.last > idleBufSize/2 && d.prev > idleBufSize/2) {
			d.buf = nil
		} else {
			d.buf = d.buf[:0]
		}
		d.off = 0
	case d.off > 0 && cap(d.buf)-len(d.buf) < minFill:
		n := copy(d.buf, d.buf[d.off:])
		d.buf, d.off = d.buf[:n], 0
	}
}

// Header returns the connection header read in intro mode, once it has
// been read.
func (d *Decoder) Header() ([4]byte, bool) { return d.header, d.hasHeader }

// RoutingInfo returns the edge-routing bytes of the pre-intro: nil when
// there was none, empty (not nil) for a pre-intro with no bytes.
func (d *Decoder) RoutingInfo() []byte { return d.routing }

// Buffered returns the number of bytes written but not yet returned.
func (d *Decoder) Buffered() int { return len(d.buf) - d.off }

// Next returns the next complete frame body, or (nil, nil) when more input
// is needed. The body aliases the decoder's buffer and is valid until the
// next Write; copy it to keep it. A length is checked against the limit
// before any room is made for the body.
func (d *Decoder) Next() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.intro {
		ok, err := d.readIntro()
		if err != nil || !ok {
			d.err = err
			return nil, err
		}
	}
	in := d.buf[d.off:]
	if len(in) < FrameHeaderSize {
		return nil, nil
	}
	n := frameLen(in)
	if n > d.maxFrame() {
		d.err = &FrameError{Length: n, Limit: d.maxFrame()}
		return nil, d.err
	}
	if len(in) < FrameHeaderSize+n {
		// Make room for the rest of this frame once, now that its length
		// is known to be acceptable.
		if need := FrameHeaderSize + n; cap(d.buf)-d.off < need {
			d.realloc(need)
		}
		return nil, nil
	}
	body := in[FrameHeaderSize : FrameHeaderSize+n : FrameHeaderSize+n]
	d.off += FrameHeaderSize + n
	d.prev, d.last = d.last, n
	return body, nil
}

// readIntro consumes the intro; ok is false while more input is needed.
func (d *Decoder) readIntro() (ok bool, err error) {
	in := d.buf[d.off:]
	pos := 0
	if len(in) < 4 {
		// Refuse early when the first bytes already cannot start an intro.
		if !bytes.HasPrefix(edgeMagic[:], in) && !bytes.HasPrefix(HeaderV3[:3], in[:min(len(in), 3)]) {
			return false, fmt.Errorf("%w: % x", ErrBadHeader, in)
		}
		return false, nil
	}
	var routing []byte
	if [4]byte(in[:4]) == edgeMagic {
		if len(in) < 4+FrameHeaderSize {
			return false, nil
		}
		n := frameLen(in[4:])
		if n > d.maxFrame() {
			return false, fmt.Errorf("%w: edge routing: %w", ErrBadHeader, &FrameError{Length: n, Limit: d.maxFrame()})
		}
		pos = 4 + FrameHeaderSize + n
		if len(in) < pos+4 {
			return false, nil
		}
		// Non-nil even when empty: an empty pre-intro was still sent.
		routing = bytes.Clone(in[4+FrameHeaderSize : pos])
	}
	h := [4]byte(in[pos : pos+4])
	if !validHeader(h) {
		return false, fmt.Errorf("%w: % x", ErrBadHeader, h[:])
	}
	d.header, d.hasHeader, d.routing = h, true, routing
	d.off += pos + 4
	d.intro = false
	return true, nil
}

// SetMaxFrame changes the body length limit (0 means MaxFrameSize), e.g.
// to raise a small pre-handshake limit once the peer is authenticated.
func (d *Decoder) SetMaxFrame(n int) { d.limit = n }
