package binxml

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/walinkdev/walink/jid"
)

// Type bytes (PROTOCOL.md §8.2). 0x01–0xEB are single-byte tokens.
const (
	tagListEmpty  = 0x00
	tagDict0      = 0xEC // 0xEC..0xEF: DICTIONARY_0..3, next byte indexes it
	tagDict3      = 0xEF
	tagInteropJID = 0xF5 // user, device u16, integrator u16, server
	tagFBJID      = 0xF6 // user, device u16, server
	tagADJID      = 0xF7 // domain byte, device byte, user
	tagList8      = 0xF8
	tagList16     = 0xF9
	tagJIDPair    = 0xFA // user (or 0x00), server
	tagHex8       = 0xFB
	tagBinary8    = 0xFC
	tagBinary20   = 0xFD
	tagBinary32   = 0xFE
	tagNibble8    = 0xFF
)

// AD_JID domain bytes; any other value is a legacy agent on s.whatsapp.net.
const (
	domainPN        = 0
	domainLID       = 1
	domainHosted    = 128
	domainHostedLID = 129
)

// Limits.
const (
	// MaxDepth is the deepest nesting of child lists the codec accepts (the
	// root node is depth 0). Real stanzas stay below 10.
	MaxDepth = 64
	// MaxNodes and MaxAttrs cap the nodes and attributes of one decoded
	// frame, bounding memory to a few tens of MiB whatever the frame holds
	// (a node costs ~90 bytes in memory but can take 3 bytes on the wire).
	// The largest real stanzas (pre-key uploads, usync queries) hold a few
	// thousand.
	MaxNodes = 1 << 18
	MaxAttrs = 1 << 18
	// MaxInflated caps the size of a zlib-compressed frame after inflation.
	MaxInflated = 16 << 20
	// maxPacked is the longest string NIBBLE_8/HEX_8 can hold.
	maxPacked = 127
	maxList   = 0xFFFF
	maxBinary = 0xFFFFFFFF
)

// Marshal encodes n with the v3 dictionary, with the leading flags byte 0x00.
func Marshal(n Node) ([]byte, error) { return DictV3.Marshal(n) }

// AppendMarshal appends the frame plaintext for n (flags byte 0x00, then the
// node, v3 dictionary) to dst: the send path encodes straight into the
// buffer the frame is sealed in. On error dst is returned unchanged in
// length.
func AppendMarshal(dst []byte, n Node) ([]byte, error) { return DictV3.AppendMarshal(dst, n) }

// Marshal encodes n with the leading flags byte 0x00 into a buffer of its
// own.
func (d *Dictionary) Marshal(n Node) ([]byte, error) {
	// One walk of the tree into a reused scratch buffer, then one copy out
	// (append does not zero what it copies). A stanza bigger than the pool
	// keeps was moved by append into a fresh buffer while it grew, and that
	// buffer is handed over without another copy.
	bp := scratchPool.Get().(*[]byte)
	out, err := d.AppendMarshal((*bp)[:0], n)
	if err != nil {
		scratchPool.Put(bp)
		return nil, err
	}
	if cap(out) > maxScratch {
		scratchPool.Put(bp)
		return out, nil
	}
	res := append([]byte(nil), out...)
	*bp = out[:0]
	scratchPool.Put(bp)
	return res, nil
}

// maxScratch is the largest scratch buffer kept for reuse: one pre-key
// upload (~40 KiB) should not pin its buffer in the pool.
const maxScratch = 16 << 10

var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// AppendMarshal appends the frame plaintext for n (flags byte 0x00, then the
// node) to dst. On error dst is returned unchanged in length.
func (d *Dictionary) AppendMarshal(dst []byte, n Node) ([]byte, error) {
	out, err := d.AppendNode(append(dst, 0), n)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// EncodeNode encodes n without a flags byte (the counterpart of
// [Dictionary.DecodeNode]).
func (d *Dictionary) EncodeNode(n Node) ([]byte, error) {
	return d.AppendNode(make([]byte, 0, sizeBound(&n, 0)), n)
}

// AppendNode appends the encoding of n (no flags byte) to dst. On error dst
// is returned unchanged in length and the error is an [*EncodeError].
func (d *Dictionary) AppendNode(dst []byte, n Node) ([]byte, error) {
	d, err := d.resolve()
	if err != nil {
		return dst, err
	}
	e := encoder{d: d}
	out, err := e.node(dst, &n, 0)
	if err != nil {
		return dst, &EncodeError{Path: e.path(&n), Err: err}
	}
	return out, nil
}

// encoder holds what the append functions share. The output slice is
// passed and returned rather than kept here, so it stays in registers.
type encoder struct {
	d *Dictionary
	// failed holds the indexes of the child on the path to the failing
	// node, innermost first, so a good encode pays nothing for paths.
	failed []int
}

// path rebuilds "root/child[i]/..." from e.failed.
func (e *encoder) path(n *Node) string {
	p := n.Tag
	if p == "" {
		p = "<empty>"
	}
	for i := len(e.failed) - 1; i >= 0; i-- {
		idx := e.failed[i]
		if idx >= len(n.Children) {
			break
		}
		n = &n.Children[idx]
		p += "/" + n.Tag + "[" + strconv.Itoa(idx) + "]"
	}
	return p
}

func (e *encoder) node(b []byte, n *Node, depth int) ([]byte, error) {
	if n.Tag == "" {
		return b, fmt.Errorf("%w: empty tag", ErrInvalidNode)
	}
	if depth > MaxDepth {
		return b, fmt.Errorf("%w: nesting deeper than %d", ErrLimit, MaxDepth)
	}
	if n.Children != nil && n.Content != nil {
		return b, fmt.Errorf("%w: both children and content", ErrInvalidNode)
	}
	size := 1 + 2*len(n.Attrs)
	if n.Children != nil || n.Content != nil {
		size++
	}
	if size > maxList {
		return b, fmt.Errorf("%w: %d attributes", ErrLimit, len(n.Attrs))
	}
	b = appendListStart(b, size)
	b, err := e.str(b, n.Tag)
	if err != nil {
		return b, err
	}
	for i := range n.Attrs {
		a := &n.Attrs[i]
		if a.Key == "" {
			return b, fmt.Errorf("%w: attribute %d has an empty key", ErrInvalidNode, i)
		}
		if b, err = e.str(b, a.Key); err != nil {
			return b, err
		}
		if a.IsJID() {
			b, err = e.jid(b, a.JID)
		} else {
			b, err = e.str(b, a.Value)
		}
		if err != nil {
			return b, fmt.Errorf("%w in attribute %q", err, a.Key)
		}
	}
	switch {
	case n.Children != nil:
		if len(n.Children) > maxList {
			return b, fmt.Errorf("%w: %d children", ErrLimit, len(n.Children))
		}
		if len(n.Children) == 0 {
			return append(b, tagListEmpty), nil
		}
		b = appendListStart(b, len(n.Children))
		for i := range n.Children {
			if b, err = e.node(b, &n.Children[i], depth+1); err != nil {
				e.failed = append(e.failed, i)
				return b, err
			}
		}
	case n.Content != nil:
		if uint64(len(n.Content)) > maxBinary {
			return b, fmt.Errorf("%w: content of %d bytes", ErrLimit, len(n.Content))
		}
		b = appendBinaryHeader(b, len(n.Content))
		b = append(b, n.Content...)
	}
	return b, nil
}

// appendListStart writes a list header; size is 1..0xFFFF.
func appendListStart(b []byte, size int) []byte {
	if size < 256 {
		return append(b, tagList8, byte(size))
	}
	return append(b, tagList16, byte(size>>8), byte(size))
}

// appendBinaryHeader writes BINARY_8/20/32 for n bytes (n <= maxBinary).
func appendBinaryHeader(b []byte, n int) []byte {
	switch {
	case n < 1<<8:
		return append(b, tagBinary8, byte(n))
	case n < 1<<20:
		return append(b, tagBinary20, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, tagBinary32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// str writes s in whatsmeow's order of preference (see the package doc).
func (e *encoder) str(b []byte, s string) ([]byte, error) {
	if s == "" {
		return append(b, tagBinary8, 0), nil
	}
	if code, ok := e.d.lookup(s); ok {
		if code < 256 {
			return append(b, byte(code)), nil
		}
		return append(b, tagDict0+byte(code>>8)-1, byte(code)), nil
	}
	if len(s) <= maxPacked {
		if packable(s, &packTables[0]) {
			return appendPacked(b, tagNibble8, s, &packTables[0]), nil
		}
		if packable(s, &packTables[1]) {
			return appendPacked(b, tagHex8, s, &packTables[1]), nil
		}
	}
	if uint64(len(s)) > maxBinary {
		return b, fmt.Errorf("%w: string of %d bytes", ErrLimit, len(s))
	}
	b = appendBinaryHeader(b, len(s))
	return append(b, s...), nil
}

// packTables map a character to its 4-bit code in NIBBLE_8 ([0]) and
// HEX_8 ([1]) packing, 0xFF for characters the alphabet lacks.
var packTables = func() (t [2][256]byte) {
	for i := range t[0] {
		t[0][i], t[1][i] = 0xFF, 0xFF
	}
	for c := byte('0'); c <= '9'; c++ {
		t[0][c], t[1][c] = c-'0', c-'0'
	}
	t[0]['-'], t[0]['.'] = 10, 11
	for c := byte('A'); c <= 'F'; c++ {
		t[1][c] = c - 'A' + 10
	}
	return t
}()

func packable(s string, table *[256]byte) bool {
	for i := 0; i < len(s); i++ {
		if table[s[i]] == 0xFF {
			return false
		}
	}
	return true
}

// appendPacked writes a packed string: type byte, then ceil(len/2) with bit
// 0x80 set when len is odd, then two characters per byte, padding with 0xF.
func appendPacked(b []byte, tag byte, s string, table *[256]byte) []byte {
	l := (len(s) + 1) / 2
	hdr := byte(l)
	if len(s)%2 == 1 {
		hdr |= 0x80
	}
	b = append(b, tag, hdr)
	for i := 0; i+1 < len(s); i += 2 {
		b = append(b, table[s[i]]<<4|table[s[i+1]])
	}
	if len(s)%2 == 1 {
		b = append(b, table[s[len(s)-1]]<<4|0x0F)
	}
	return b
}

// jid writes a typed JID in the wire form whatsmeow chooses for it (§9).
func (e *encoder) jid(b []byte, j jid.JID) ([]byte, error) {
	if j.Integrator != 0 && j.Server != jid.InteropServer {
		return b, fmt.Errorf("%w: integrator on a %s jid", ErrInvalidNode, j.Server)
	}
	if j.RawAgent != 0 {
		// Legacy agents only exist as AD_JID domain bytes on s.whatsapp.net,
		// and the domain bytes of lid and the hosted servers are taken.
		switch {
		case j.Server != jid.DefaultUserServer:
			return b, fmt.Errorf("%w: agent on a %s jid", ErrInvalidNode, j.Server)
		case j.RawAgent == domainLID || j.RawAgent == domainHosted || j.RawAgent == domainHostedLID:
			return b, fmt.Errorf("%w: agent %d is not encodable", ErrInvalidNode, j.RawAgent)
		}
		return e.adJID(b, j.RawAgent, j)
	}
	var err error
	switch j.Server {
	case jid.DefaultUserServer, jid.LIDServer:
		if j.Device == 0 {
			return e.jidPair(b, j)
		}
		dom := byte(domainPN)
		if j.Server == jid.LIDServer {
			dom = domainLID
		}
		return e.adJID(b, dom, j)
	case jid.HostedServer:
		return e.adJID(b, domainHosted, j)
	case jid.HostedLIDServer:
		return e.adJID(b, domainHostedLID, j)
	case jid.MessengerServer:
		if b, err = e.str(append(b, tagFBJID), j.User); err != nil {
			return b, err
		}
		return e.str(append(b, byte(j.Device>>8), byte(j.Device)), j.Server)
	case jid.InteropServer:
		if b, err = e.str(append(b, tagInteropJID), j.User); err != nil {
			return b, err
		}
		b = append(b, byte(j.Device>>8), byte(j.Device), byte(j.Integrator>>8), byte(j.Integrator))
		return e.str(b, j.Server)
	}
	if j.Device != 0 {
		return b, fmt.Errorf("%w: device on a %s jid", ErrInvalidNode, j.Server)
	}
	return e.jidPair(b, j)
}

func (e *encoder) jidPair(b []byte, j jid.JID) ([]byte, error) {
	b = append(b, tagJIDPair)
	if j.User == "" {
		b = append(b, tagListEmpty)
	} else {
		var err error
		if b, err = e.str(b, j.User); err != nil {
			return b, err
		}
	}
	return e.str(b, j.Server)
}

func (e *encoder) adJID(b []byte, domain byte, j jid.JID) ([]byte, error) {
	if j.Device > 0xFF {
		return b, fmt.Errorf("%w: device %d does not fit AD_JID", ErrInvalidNode, j.Device)
	}
	return e.str(append(b, tagADJID, domain, byte(j.Device)), j.User)
}

// sizeBound over-estimates the encoded size of n so Marshal allocates once.
func sizeBound(n *Node, depth int) int {
	if depth > MaxDepth {
		return 0 // the encoder will refuse it anyway
	}
	s := 3 + 5 + len(n.Tag) + 5 + len(n.Content)
	for i := range n.Attrs {
		a := &n.Attrs[i]
		s += 5 + len(a.Key) + 5 + len(a.Value)
		if a.IsJID() {
			s += 2*5 + 5 + len(a.JID.User) + len(a.JID.Server)
		}
	}
	for i := range n.Children {
		s += sizeBound(&n.Children[i], depth+1)
	}
	return s
}
