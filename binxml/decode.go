package binxml

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"unsafe"

	"github.com/walinkdev/walink/jid"
)

// Frame flags (the first byte of a frame plaintext).
const flagCompressed = 0x02

// Unmarshal decodes a frame plaintext (flags byte, maybe zlib) with v3.
// See [Dictionary.Unmarshal] for aliasing.
func Unmarshal(frame []byte) (Node, error) { return DictV3.Unmarshal(frame) }

// Unmarshal decodes a frame plaintext: flags byte, zlib if flag 0x02.
//
// The Content of decoded nodes aliases frame (for uncompressed frames): do
// not modify frame while the node is in use, and copy Content that must
// outlive it. Strings (tags, keys, values, JIDs) never alias frame.
func (d *Dictionary) Unmarshal(frame []byte) (Node, error) {
	if len(frame) == 0 {
		return Node{}, &DecodeError{Offset: 0, Err: fmt.Errorf("%w: empty frame", ErrTruncated)}
	}
	data := frame[1:]
	if frame[0]&flagCompressed != 0 {
		var err error
		if data, err = inflate(data); err != nil {
			return Node{}, err
		}
	}
	return d.DecodeNode(data)
}

// inflate decompresses a zlib stream of at most MaxInflated bytes.
func inflate(data []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, &DecodeError{Err: fmt.Errorf("%w: zlib: %w", ErrMalformed, err)}
	}
	defer zr.Close()
	// Start from a guess so typical frames need one allocation; the limit
	// reader makes an oversized stream fail after MaxInflated+1 bytes.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(4*len(data), 512), MaxInflated)))
	n, err := buf.ReadFrom(io.LimitReader(zr, MaxInflated+1))
	if err != nil {
		return nil, &DecodeError{Err: fmt.Errorf("%w: zlib: %w", ErrMalformed, err)}
	}
	if n > MaxInflated {
		return nil, &DecodeError{Err: fmt.Errorf("%w: inflated frame exceeds %d bytes", ErrLimit, MaxInflated)}
	}
	return buf.Bytes(), nil
}

// DecodeNode decodes one node from data, which holds exactly that node and
// no flags byte (as in captured stanzas). Content aliases data as in
// [Dictionary.Unmarshal]. Errors are [*DecodeError].
func (d *Dictionary) DecodeNode(data []byte) (Node, error) {
	d, err := d.resolve()
	if err != nil {
		return Node{}, err
	}
	r := decoder{d: d, single: d.single, double: d.double, buf: data}
	nodes, attrs, strs := scan(data)
	if nodes > 0 {
		r.nodes = make([]Node, 0, min(nodes, MaxNodes))
	}
	if attrs > 0 {
		r.attrs = make([]Attr, 0, min(attrs, MaxAttrs))
	}
	if strs > 0 {
		r.strs = make([]byte, 0, strs)
	}
	var n Node
	off := r.node(&n, 0, 0)
	if off < 0 {
		return Node{}, &DecodeError{Offset: r.errOff, Err: r.err}
	}
	if off != len(data) {
		return Node{}, &DecodeError{Offset: off, Err: fmt.Errorf("%w: %d bytes", ErrTrailingData, len(data)-off)}
	}
	return n, nil
}

// decoder reads one node tree. Strings are copied into arena chunks and
// attribute and child slices are cut from shared chunks, so a stanza costs
// a handful of allocations rather than a few per node.
//
// The reading methods take the offset to read at and return the offset
// after what they read, or failed (< 0) once they have recorded the error
// in err and errOff: the hot path carries no error values, and the error
// messages are built out of line.
type decoder struct {
	d      *Dictionary
	single *[236]string    // d.single
	double *[4][256]string // d.double
	buf    []byte
	err    error
	errOff int

	strs  []byte
	attrs []Attr
	nodes []Node

	nnodes, nattrs int // totals so far, checked against MaxNodes/MaxAttrs
}

// failed is the offset the reading methods return after an error.
const failed = -1

func (r *decoder) fail(off int, err error) int {
	r.errOff = off
	r.err = err
	return failed
}

//go:noinline
func (r *decoder) failf(off int, sentinel error, format string, args ...any) int {
	return r.fail(off, fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...))
}

// truncated reports that what, at off, needs need bytes.
//
//go:noinline
func (r *decoder) truncated(off int, what string, need int) int {
	return r.fail(off, fmt.Errorf("%w: %s needs %d bytes, %d left", ErrTruncated, what, need, len(r.buf)-off))
}

// uintAt reads an nbytes big-endian unsigned integer at off; the caller has
// checked that the input holds it.
func uintAt(buf []byte, off, nbytes int) int {
	v := 0
	for _, c := range buf[off : off+nbytes] {
		v = v<<8 | int(c)
	}
	return v
}

// lenSize returns how many bytes the length after a BINARY tag takes.
func lenSize(tag byte) int {
	switch tag {
	case tagBinary8:
		return 1
	case tagBinary20:
		return 3
	}
	return 4
}

// binaryLen reads the length after the BINARY tag at off-1 and returns it
// and the offset of the bytes.
func (r *decoder) binaryLen(tag byte, off int) (l, next int) {
	if l, next = binaryLen(r.buf, tag, off); next < 0 {
		return 0, r.truncated(off, "binary length", lenSize(tag))
	}
	return l, next
}

// node decodes the node at off into *n and returns the offset after it.
// Node headers, token tags, BINARY_8 content and LIST_8 children take the
// inline path; content() reads the rest.
func (r *decoder) node(n *Node, off, depth int) int {
	buf := r.buf
	start := off
	if depth > MaxDepth {
		return r.failf(start, ErrLimit, "nesting deeper than %d", MaxDepth)
	}
	if off+2 > len(buf) {
		return r.truncatedHeader(off)
	}
	var size uint
	switch t := buf[off]; t {
	case tagList8:
		size = uint(buf[off+1])
		off += 2
	case tagList16:
		if off+3 > len(buf) {
			return r.truncated(off+1, "list size", 2)
		}
		size = uint(buf[off+1])<<8 | uint(buf[off+2])
		off += 3
	default:
		return r.failf(start, ErrMalformed, "node starts with 0x%02x, not a list", t)
	}
	if size == 0 {
		return r.failf(start, ErrMalformed, "empty node")
	}
	tagOff := off
	var tag string
	if off < len(buf) && buf[off] < tagDict0 {
		tag = r.single[buf[off]]
		off++
	} else if tag, off = r.str(off, "tag"); off < 0 {
		return off
	}
	if tag == "" {
		return r.failf(tagOff, ErrMalformed, "empty tag")
	}
	n.Tag = tag
	if nattr := int((size - 1) / 2); nattr > 0 {
		// Each attribute takes at least two bytes: refuse before allocating.
		if 2*nattr > len(buf)-off {
			return r.truncatedAttrs(off, nattr)
		}
		if r.nattrs += nattr; r.nattrs > MaxAttrs {
			return r.failf(start, ErrLimit, "more than %d attributes in a frame", MaxAttrs)
		}
		attrs := r.attrSlice(nattr, off)
		n.Attrs = attrs
		for i := range attrs {
			a := &attrs[i]
			keyOff := off
			var key string
			if off < len(buf) && buf[off] < tagDict0 {
				key = r.single[buf[off]]
				off++
			} else if key, off = r.str(off, "attribute key"); off < 0 {
				return off
			}
			if key == "" {
				return r.failf(keyOff, ErrMalformed, "empty attribute key")
			}
			a.Key = key
			if off >= len(buf) {
				return r.truncated(off, "attribute value", 1)
			}
			if t := buf[off]; t < tagDict0 {
				a.Value = r.single[t]
				off++
			} else if isJIDTag(t) {
				if off = r.jid(&a.JID, off); off < 0 {
					return off
				}
			} else {
				var v string
				if v, off = r.str(off, "attribute value"); off < 0 {
					return off
				}
				a.Value = v
			}
		}
	}
	if size%2 == 1 {
		return off
	}
	if off+2 > len(buf) {
		return r.content(n, off, depth)
	}
	switch buf[off] {
	case tagBinary8:
		l := int(buf[off+1])
		if off += 2; l > len(buf)-off {
			return r.truncated(off, "content", l)
		}
		n.Content = buf[off : off+l : off+l]
		return off + l
	case tagList8:
		count := int(buf[off+1])
		if count == 0 {
			break
		}
		// A node takes at least 3 bytes (list tag, size, one-byte tag).
		if off += 2; 3*count > len(buf)-off {
			return r.truncatedList(off, count)
		}
		if r.nnodes += count; r.nnodes > MaxNodes {
			return r.failf(off-2, ErrLimit, "more than %d nodes in a frame", MaxNodes)
		}
		kids := r.nodeSlice(count, off)
		n.Children = kids
		for i := range kids {
			if off = r.node(&kids[i], off, depth+1); off < 0 {
				break
			}
		}
		return off
	}
	return r.content(n, off, depth)
}

// children decodes count child nodes of n, at depth+1, from off (the
// inline LIST_8 path of node does the same).
func (r *decoder) children(n *Node, count, off, depth int) int {
	kids := r.nodeSlice(count, off)
	n.Children = kids
	for i := range kids {
		if off = r.node(&kids[i], off, depth+1); off < 0 {
			break
		}
	}
	return off
}

// truncatedHeader reports a node header cut short at off.
//
//go:noinline
func (r *decoder) truncatedHeader(off int) int {
	if off >= len(r.buf) {
		return r.truncated(off, "node", 1)
	}
	if t := r.buf[off]; t == tagList8 || t == tagList16 {
		return r.truncated(off+1, "list size", int(t-tagList8)+1)
	}
	return r.failf(off, ErrMalformed, "node starts with 0x%02x, not a list", r.buf[off])
}

//go:noinline
func (r *decoder) truncatedAttrs(off, nattr int) int {
	return r.truncated(off, fmt.Sprintf("%d attributes", nattr), 2*nattr)
}

func isJIDTag(b byte) bool {
	return b == tagJIDPair || b == tagADJID || b == tagFBJID || b == tagInteropJID
}

// jid reads the JID at off (whose first byte is a JID tag) into *j.
func (r *decoder) jid(j *jid.JID, off int) int {
	switch r.buf[off] {
	case tagJIDPair:
		return r.jidPair(j, off)
	case tagADJID:
		return r.adJID(j, off)
	}
	return r.fbOrInteropJID(j, off)
}

// content reads the content at off into *n: children, bytes or a string.
func (r *decoder) content(n *Node, off, depth int) int {
	buf := r.buf
	start := off
	if off >= len(buf) {
		return r.truncated(off, "content", 1)
	}
	tag := buf[off]
	off++
	switch tag {
	case tagListEmpty:
		n.Children = []Node{}
		return off
	case tagList8, tagList16:
		nb := 1
		if tag == tagList16 {
			nb = 2
		}
		if nb > len(buf)-off {
			return r.truncated(off, "list size", nb)
		}
		count := uintAt(buf, off, nb)
		off += nb
		// A node takes at least 3 bytes (list tag, size, one-byte tag).
		if 3*count > len(buf)-off {
			return r.truncatedList(off, count)
		}
		if r.nnodes += count; r.nnodes > MaxNodes {
			return r.failf(start, ErrLimit, "more than %d nodes in a frame", MaxNodes)
		}
		if count == 0 {
			n.Children = []Node{}
			return off
		}
		return r.children(n, count, off, depth)
	case tagBinary8, tagBinary20, tagBinary32:
		l, off := r.binaryLen(tag, off)
		if off < 0 {
			return off
		}
		if l < 0 || l > len(buf)-off {
			return r.truncated(off, "content", l)
		}
		n.Content = buf[off : off+l : off+l]
		return off + l
	}
	if isJIDTag(tag) {
		var j jid.JID
		if off = r.jid(&j, start); off < 0 {
			return off
		}
		n.Content = []byte(j.String())
		return off
	}
	var s string
	if s, off = r.str(start, "content"); off < 0 {
		return off
	}
	n.Content = []byte(s)
	return off
}

//go:noinline
func (r *decoder) truncatedList(off, count int) int {
	return r.truncated(off, fmt.Sprintf("list of %d nodes", count), 3*count)
}

// str reads a string that must not be a JID (tags, keys, JID parts). It
// never recurses, so nested JID tags cannot grow the stack. Double-byte
// tokens and short raw strings take the fast path; callers in the hot
// path read single-byte tokens themselves.
func (r *decoder) str(off int, what string) (string, int) {
	buf := r.buf
	if off+1 < len(buf) {
		tag := buf[off]
		if tag < tagDict0 {
			// tagListEmpty is single[0], "".
			return r.single[tag], off + 1
		}
		if tag <= tagDict3 {
			if s := r.double[tag-tagDict0][buf[off+1]]; s != "" {
				return s, off + 2
			}
		} else if tag == tagBinary8 {
			l := int(buf[off+1])
			if l <= len(buf)-off-2 {
				return r.copyString(buf[off+2 : off+2+l]), off + 2 + l
			}
		}
	}
	return r.strSlow(off, what)
}

func (r *decoder) strSlow(off int, what string) (string, int) {
	buf := r.buf
	start := off
	if off >= len(buf) {
		return "", r.truncated(off, what, 1)
	}
	tag := buf[off]
	off++
	switch {
	case tag == tagListEmpty:
		return "", off
	case tag < tagDict0:
		return r.d.single[tag], off
	case tag <= tagDict3:
		if off >= len(buf) {
			return "", r.truncated(off, what, 1)
		}
		i := buf[off]
		s := r.d.double[tag-tagDict0][i]
		if s == "" {
			return "", r.failf(start, ErrUnknownTag, "no token %d in dictionary %d", i, tag-tagDict0)
		}
		return s, off + 1
	}
	switch tag {
	case tagBinary8, tagBinary20, tagBinary32:
		l, off := r.binaryLen(tag, off)
		if off < 0 {
			return "", off
		}
		if l < 0 || l > len(buf)-off {
			return "", r.truncated(off, what, l)
		}
		return r.copyString(buf[off : off+l]), off + l
	case tagNibble8, tagHex8:
		return r.packed(tag, start)
	case tagJIDPair, tagADJID, tagFBJID, tagInteropJID:
		return "", r.failf(start, ErrMalformed, "jid where a %s belongs", what)
	case tagList8, tagList16:
		return "", r.failf(start, ErrMalformed, "list where a %s belongs", what)
	}
	return "", r.failf(start, ErrUnknownTag, "0x%02x", tag)
}

// Packed digits: NIBBLE_8 has 0-9, '-', '.' (12-15 are invalid), HEX_8
// 0-9, A-F. The pair tables give the two characters of a packed byte as
// a little-endian uint16, 0 for a NIBBLE_8 byte with an invalid digit.
var (
	nibbleChars = [16]byte{'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '-', '.'}
	hexChars    = [16]byte{'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'A', 'B', 'C', 'D', 'E', 'F'}

	nibblePairs, hexPairs = packedPairs(&nibbleChars), packedPairs(&hexChars)
)

func packedPairs(chars *[16]byte) *[256]uint16 {
	var t [256]uint16
	for b := range t {
		hi, lo := chars[b>>4], chars[b&0x0F]
		if hi != 0 && lo != 0 {
			t[b] = uint16(hi) | uint16(lo)<<8
		}
	}
	return &t
}

// packed reads the NIBBLE_8 or HEX_8 string whose tag is at start.
func (r *decoder) packed(tag byte, start int) (string, int) {
	buf := r.buf
	off := start + 1
	if off >= len(buf) {
		return "", r.truncated(off, "packed length", 1)
	}
	hdr := buf[off]
	off++
	nb := int(hdr & 0x7F)
	if nb > len(buf)-off {
		return "", r.truncated(off, "packed string", nb)
	}
	b := buf[off : off+nb]
	off += nb
	n := 2 * nb
	if hdr&0x80 != 0 {
		if n == 0 {
			return "", r.failf(start, ErrMalformed, "odd packed string of length 0")
		}
		n--
	}
	pairs, chars := hexPairs, &hexChars
	if tag == tagNibble8 {
		pairs, chars = nibblePairs, &nibbleChars
	}
	out := r.alloc(n)
	// Every digit that is read must be valid; an odd string's last low
	// nibble is padding.
	full := b[:n/2]
	out = out[:len(full)*2]
	for i, c := range full {
		p := pairs[c]
		if p == 0 {
			return "", r.badNibble(b, n, start)
		}
		out[2*i] = byte(p)
		out[2*i+1] = byte(p >> 8)
	}
	if n%2 == 1 {
		c := chars[b[n/2]>>4]
		if c == 0 {
			return "", r.badNibble(b, n, start)
		}
		out = out[:n]
		out[n-1] = c
	}
	return unsafe.String(unsafe.SliceData(out), n), off
}

// badNibble reports the first invalid digit of a NIBBLE_8 string.
//
//go:noinline
func (r *decoder) badNibble(b []byte, n, start int) int {
	for i := range n {
		v := b[i/2] >> 4
		if i%2 == 1 {
			v = b[i/2] & 0x0F
		}
		if v > 11 {
			return r.failf(start, ErrMalformed, "nibble 0x%x", v)
		}
	}
	return r.failf(start, ErrMalformed, "bad nibble")
}

func (r *decoder) jidPair(j *jid.JID, start int) int {
	user, off := r.str(start+1, "jid user")
	if off < 0 {
		return off
	}
	var server string
	if server, off = r.str(off, "jid server"); off < 0 {
		return off
	}
	if server == "" {
		return r.failf(start, ErrMalformed, "jid with an empty server")
	}
	*j = jid.JID{User: user, Server: server}
	return off
}

func (r *decoder) adJID(j *jid.JID, start int) int {
	off := start + 1
	if 2 > len(r.buf)-off {
		return r.truncated(off, "AD_JID", 2)
	}
	domain, device := r.buf[off], r.buf[off+1]
	user, off := r.str(off+2, "jid user")
	if off < 0 {
		return off
	}
	v := jid.JID{User: user, Device: uint16(device), Server: jid.DefaultUserServer}
	switch domain {
	case domainPN:
	case domainLID:
		v.Server = jid.LIDServer
	case domainHosted:
		v.Server = jid.HostedServer
	case domainHostedLID:
		v.Server = jid.HostedLIDServer
	default:
		v.RawAgent = domain
	}
	*j = v
	return off
}

func (r *decoder) fbOrInteropJID(j *jid.JID, start int) int {
	tag := r.buf[start]
	user, off := r.str(start+1, "jid user")
	if off < 0 {
		return off
	}
	n := 2
	if tag == tagInteropJID {
		n = 4
	}
	if n > len(r.buf)-off {
		return r.truncated(off, "jid device", n)
	}
	b := r.buf[off : off+n]
	var server string
	if server, off = r.str(off+n, "jid server"); off < 0 {
		return off
	}
	v := jid.JID{User: user, Device: uint16(b[0])<<8 | uint16(b[1]), Server: server}
	want := jid.MessengerServer
	if tag == tagInteropJID {
		v.Integrator = uint16(b[2])<<8 | uint16(b[3])
		want = jid.InteropServer
	}
	// Only these servers use these forms; anything else could not be
	// written back the same way.
	if server != want {
		return r.failf(start, ErrMalformed, "server %q in a %s jid", server, want)
	}
	*j = v
	return off
}

// alloc returns n bytes from the string arena. The arena is only appended
// to, so strings made from earlier slices stay immutable.
func (r *decoder) alloc(n int) []byte {
	if n > cap(r.strs)-len(r.strs) {
		// Size chunks by the input so a small stanza needs one chunk; a
		// packed string expands at most 2x, so the input bounds the need.
		c := max(n, min(len(r.buf), 4096), 64)
		r.strs = make([]byte, 0, c)
	}
	l := len(r.strs)
	r.strs = r.strs[:l+n]
	return r.strs[l : l+n : l+n]
}

func (r *decoder) copyString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	out := r.alloc(len(b))
	copy(out, b)
	return unsafe.String(unsafe.SliceData(out), len(out))
}

// attrSlice returns n zeroed attributes from a shared chunk; off is where
// they start in the input.
func (r *decoder) attrSlice(n, off int) []Attr {
	if n > cap(r.attrs)-len(r.attrs) {
		// Bound the chunk by what the rest of the input could hold.
		c := max(n, min(2*cap(r.attrs), (len(r.buf)-off)/2), 8)
		r.attrs = make([]Attr, 0, c)
	}
	l := len(r.attrs)
	r.attrs = r.attrs[:l+n]
	return r.attrs[l : l+n : l+n]
}

// nodeSlice returns n zeroed nodes from a shared chunk; off is where they
// start in the input.
func (r *decoder) nodeSlice(n, off int) []Node {
	if n > cap(r.nodes)-len(r.nodes) {
		c := max(n, min(2*cap(r.nodes), (len(r.buf)-off)/3), 4)
		r.nodes = make([]Node, 0, c)
	}
	l := len(r.nodes)
	r.nodes = r.nodes[:l+n]
	return r.nodes[l : l+n : l+n]
}
