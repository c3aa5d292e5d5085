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
	r := decoder{d: d, buf: data}
	sc := scanner{buf: data}
	sc.node(0)
	if sc.nodes > 0 {
		r.nodes = make([]Node, 0, min(sc.nodes, MaxNodes))
	}
	if sc.attrs > 0 {
		r.attrs = make([]Attr, 0, min(sc.attrs, MaxAttrs))
	}
	if sc.strs > 0 {
		r.strs = make([]byte, 0, sc.strs)
	}
	var n Node
	if err := r.node(&n, 0); err != nil {
		return Node{}, &DecodeError{Offset: r.errOff, Err: err}
	}
	if r.off != len(data) {
		return Node{}, &DecodeError{Offset: r.off, Err: fmt.Errorf("%w: %d bytes", ErrTrailingData, len(data)-r.off)}
	}
	return n, nil
}

// decoder reads one node tree. Strings are copied into arena chunks and
// attribute and child slices are cut from shared chunks, so a stanza costs
// a handful of allocations rather than a few per node.
type decoder struct {
	d      *Dictionary
	buf    []byte
	off    int
	errOff int

	strs  []byte
	attrs []Attr
	nodes []Node

	nnodes, nattrs int // totals so far, checked against MaxNodes/MaxAttrs
}

func (r *decoder) fail(off int, err error) error {
	r.errOff = off
	return err
}

func (r *decoder) truncated(what string, need int) error {
	return r.fail(r.off, fmt.Errorf("%w: %s needs %d bytes, %d left", ErrTruncated, what, need, len(r.buf)-r.off))
}

func (r *decoder) byte1(what string) (byte, error) {
	if r.off >= len(r.buf) {
		return 0, r.truncated(what, 1)
	}
	b := r.buf[r.off]
	r.off++
	return b, nil
}

// bytesN returns the next n bytes (aliasing the input).
func (r *decoder) bytesN(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.buf)-r.off {
		return nil, r.truncated(what, n)
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b, nil
}

func (r *decoder) uint(nbytes int, what string) (int, error) {
	b, err := r.bytesN(nbytes, what)
	if err != nil {
		return 0, err
	}
	v := 0
	for _, c := range b {
		v = v<<8 | int(c)
	}
	return v, nil
}

// listSize reads the size following a LIST_8/LIST_16 tag.
func (r *decoder) listSize(tag byte) (int, error) {
	if tag == tagList8 {
		return r.uint(1, "list size")
	}
	return r.uint(2, "list size")
}

func (r *decoder) node(n *Node, depth int) error {
	start := r.off
	if depth > MaxDepth {
		return r.fail(start, fmt.Errorf("%w: nesting deeper than %d", ErrLimit, MaxDepth))
	}
	tag, err := r.byte1("node")
	if err != nil {
		return err
	}
	if tag != tagList8 && tag != tagList16 {
		return r.fail(start, fmt.Errorf("%w: node starts with 0x%02x, not a list", ErrMalformed, tag))
	}
	size, err := r.listSize(tag)
	if err != nil {
		return err
	}
	if size == 0 {
		return r.fail(start, fmt.Errorf("%w: empty node", ErrMalformed))
	}
	tagOff := r.off
	if n.Tag, err = r.plainString("tag"); err != nil {
		return err
	}
	if n.Tag == "" {
		return r.fail(tagOff, fmt.Errorf("%w: empty tag", ErrMalformed))
	}
	if nattr := (size - 1) / 2; nattr > 0 {
		// Each attribute takes at least two bytes: refuse before allocating.
		if 2*nattr > len(r.buf)-r.off {
			return r.truncated(fmt.Sprintf("%d attributes", nattr), 2*nattr)
		}
		if r.nattrs += nattr; r.nattrs > MaxAttrs {
			return r.fail(start, fmt.Errorf("%w: more than %d attributes in a frame", ErrLimit, MaxAttrs))
		}
		n.Attrs = r.attrSlice(nattr)
		for i := range n.Attrs {
			if err := r.attr(&n.Attrs[i]); err != nil {
				return err
			}
		}
	}
	if size%2 == 1 {
		return nil
	}
	return r.content(n, depth)
}

func (r *decoder) attr(a *Attr) error {
	keyOff := r.off
	key, err := r.plainString("attribute key")
	if err != nil {
		return err
	}
	if key == "" {
		return r.fail(keyOff, fmt.Errorf("%w: empty attribute key", ErrMalformed))
	}
	a.Key = key
	if r.off < len(r.buf) && isJIDTag(r.buf[r.off]) {
		return r.jid(&a.JID)
	}
	a.Value, err = r.plainString("attribute value")
	return err
}

func isJIDTag(b byte) bool {
	return b == tagJIDPair || b == tagADJID || b == tagFBJID || b == tagInteropJID
}

// jid reads a JID (the next byte is a JID tag) into *j.
func (r *decoder) jid(j *jid.JID) error {
	start := r.off
	tag := r.buf[start]
	r.off++
	var err error
	switch tag {
	case tagJIDPair:
		*j, err = r.jidPair(start)
	case tagADJID:
		*j, err = r.adJID()
	default:
		*j, err = r.fbOrInteropJID(tag, start)
	}
	return err
}

func (r *decoder) content(n *Node, depth int) error {
	start := r.off
	tag, err := r.byte1("content")
	if err != nil {
		return err
	}
	switch tag {
	case tagListEmpty:
		n.Children = []Node{}
		return nil
	case tagList8, tagList16:
		count, err := r.listSize(tag)
		if err != nil {
			return err
		}
		// A node takes at least 3 bytes (list tag, size, one-byte tag).
		if 3*count > len(r.buf)-r.off {
			return r.truncated(fmt.Sprintf("list of %d nodes", count), 3*count)
		}
		if r.nnodes += count; r.nnodes > MaxNodes {
			return r.fail(start, fmt.Errorf("%w: more than %d nodes in a frame", ErrLimit, MaxNodes))
		}
		if count == 0 {
			n.Children = []Node{}
			return nil
		}
		n.Children = r.nodeSlice(count)
		for i := range n.Children {
			if err := r.node(&n.Children[i], depth+1); err != nil {
				return err
			}
		}
		return nil
	case tagBinary8, tagBinary20, tagBinary32:
		l, err := r.binaryLen(tag)
		if err != nil {
			return err
		}
		n.Content, err = r.bytesN(l, "content")
		return err
	}
	r.off = start
	s, j, isJID, err := r.value("content")
	if err != nil {
		return err
	}
	if isJID {
		n.Content = []byte(j.String())
	} else {
		n.Content = []byte(s)
	}
	return nil
}

func (r *decoder) binaryLen(tag byte) (int, error) {
	switch tag {
	case tagBinary8:
		return r.uint(1, "binary length")
	case tagBinary20:
		v, err := r.uint(3, "binary length")
		return v & 0xFFFFF, err
	default:
		return r.uint(4, "binary length")
	}
}

// plainString reads a string that must not be a JID (tags, keys, JID
// parts). It never recurses, so nested JID tags cannot grow the stack.
func (r *decoder) plainString(what string) (string, error) {
	start := r.off
	tag, err := r.byte1(what)
	if err != nil {
		return "", err
	}
	switch {
	case tag == tagListEmpty:
		return "", nil
	case tag < tagDict0:
		return r.d.single[tag], nil
	case tag <= tagDict3:
		i, err := r.byte1(what)
		if err != nil {
			return "", err
		}
		s := r.d.double[tag-tagDict0][i]
		if s == "" {
			return "", r.fail(start, fmt.Errorf("%w: no token %d in dictionary %d", ErrUnknownTag, i, tag-tagDict0))
		}
		return s, nil
	}
	switch tag {
	case tagBinary8, tagBinary20, tagBinary32:
		l, err := r.binaryLen(tag)
		if err != nil {
			return "", err
		}
		b, err := r.bytesN(l, what)
		if err != nil {
			return "", err
		}
		return r.copyString(b), nil
	case tagNibble8, tagHex8:
		return r.packed(tag, start)
	case tagJIDPair, tagADJID, tagFBJID, tagInteropJID:
		return "", r.fail(start, fmt.Errorf("%w: jid where a %s belongs", ErrMalformed, what))
	case tagList8, tagList16:
		return "", r.fail(start, fmt.Errorf("%w: list where a %s belongs", ErrMalformed, what))
	}
	return "", r.fail(start, fmt.Errorf("%w: 0x%02x", ErrUnknownTag, tag))
}

// value reads a string or a JID.
func (r *decoder) value(what string) (s string, j jid.JID, isJID bool, err error) {
	if r.off < len(r.buf) && isJIDTag(r.buf[r.off]) {
		err = r.jid(&j)
		return "", j, err == nil, err
	}
	s, err = r.plainString(what)
	return s, j, false, err
}

func (r *decoder) packed(tag byte, start int) (string, error) {
	hdr, err := r.byte1("packed length")
	if err != nil {
		return "", err
	}
	odd := hdr&0x80 != 0
	b, err := r.bytesN(int(hdr&0x7F), "packed string")
	if err != nil {
		return "", err
	}
	n := 2 * len(b)
	if odd {
		if n == 0 {
			return "", r.fail(start, fmt.Errorf("%w: odd packed string of length 0", ErrMalformed))
		}
		n--
	}
	out := r.alloc(n)
	for i := 0; i < n; i++ {
		v := b[i/2] >> 4
		if i%2 == 1 {
			v = b[i/2] & 0x0F
		}
		var c byte
		if tag == tagHex8 {
			c = "0123456789ABCDEF"[v]
		} else {
			switch {
			case v < 10:
				c = '0' + v
			case v == 10:
				c = '-'
			case v == 11:
				c = '.'
			default:
				return "", r.fail(start, fmt.Errorf("%w: nibble 0x%x", ErrMalformed, v))
			}
		}
		out[i] = c
	}
	return unsafe.String(unsafe.SliceData(out), n), nil
}

func (r *decoder) jidPair(start int) (jid.JID, error) {
	user, err := r.plainString("jid user")
	if err != nil {
		return jid.JID{}, err
	}
	server, err := r.plainString("jid server")
	if err != nil {
		return jid.JID{}, err
	}
	if server == "" {
		return jid.JID{}, r.fail(start, fmt.Errorf("%w: jid with an empty server", ErrMalformed))
	}
	return jid.JID{User: user, Server: server}, nil
}

func (r *decoder) adJID() (jid.JID, error) {
	b, err := r.bytesN(2, "AD_JID")
	if err != nil {
		return jid.JID{}, err
	}
	user, err := r.plainString("jid user")
	if err != nil {
		return jid.JID{}, err
	}
	j := jid.JID{User: user, Device: uint16(b[1]), Server: jid.DefaultUserServer}
	switch b[0] {
	case domainPN:
	case domainLID:
		j.Server = jid.LIDServer
	case domainHosted:
		j.Server = jid.HostedServer
	case domainHostedLID:
		j.Server = jid.HostedLIDServer
	default:
		j.RawAgent = b[0]
	}
	return j, nil
}

func (r *decoder) fbOrInteropJID(tag byte, start int) (jid.JID, error) {
	user, err := r.plainString("jid user")
	if err != nil {
		return jid.JID{}, err
	}
	n := 2
	if tag == tagInteropJID {
		n = 4
	}
	b, err := r.bytesN(n, "jid device")
	if err != nil {
		return jid.JID{}, err
	}
	server, err := r.plainString("jid server")
	if err != nil {
		return jid.JID{}, err
	}
	j := jid.JID{User: user, Device: uint16(b[0])<<8 | uint16(b[1]), Server: server}
	want := jid.MessengerServer
	if tag == tagInteropJID {
		j.Integrator = uint16(b[2])<<8 | uint16(b[3])
		want = jid.InteropServer
	}
	// Only these servers use these forms; anything else could not be
	// written back the same way.
	if server != want {
		return jid.JID{}, r.fail(start, fmt.Errorf("%w: server %q in a %s jid", ErrMalformed, server, want))
	}
	return j, nil
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

// attrSlice returns n zeroed attributes from a shared chunk.
func (r *decoder) attrSlice(n int) []Attr {
	if n > cap(r.attrs)-len(r.attrs) {
		// Bound the chunk by what the rest of the input could hold.
		c := max(n, min(2*cap(r.attrs), (len(r.buf)-r.off)/2), 8)
		r.attrs = make([]Attr, 0, c)
	}
	l := len(r.attrs)
	r.attrs = r.attrs[:l+n]
	return r.attrs[l : l+n : l+n]
}

// nodeSlice returns n zeroed nodes from a shared chunk.
func (r *decoder) nodeSlice(n int) []Node {
	if n > cap(r.nodes)-len(r.nodes) {
		c := max(n, min(2*cap(r.nodes), (len(r.buf)-r.off)/3), 4)
		r.nodes = make([]Node, 0, c)
	}
	l := len(r.nodes)
	r.nodes = r.nodes[:l+n]
	return r.nodes[l : l+n : l+n]
}
