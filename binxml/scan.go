package binxml

// scanner is a pre-pass over node bytes that counts what decoding will
// allocate (child nodes, attributes, string bytes), so the decoder can make
// one exactly sized slice of each instead of one per node. It validates
// nothing: on anything odd it stops, and the decoder, which does validate,
// reports the error or falls back to allocating more.
type scanner struct {
	buf   []byte
	off   int
	nodes int
	attrs int
	strs  int
}

func (s *scanner) byte1() (byte, bool) {
	if s.off >= len(s.buf) {
		return 0, false
	}
	b := s.buf[s.off]
	s.off++
	return b, true
}

func (s *scanner) skip(n int) bool {
	if n < 0 || n > len(s.buf)-s.off {
		return false
	}
	s.off += n
	return true
}

func (s *scanner) uint(n int) (int, bool) {
	if n > len(s.buf)-s.off {
		return 0, false
	}
	v := 0
	for _, c := range s.buf[s.off : s.off+n] {
		v = v<<8 | int(c)
	}
	s.off += n
	return v, true
}

func (s *scanner) node(depth int) bool {
	if depth > MaxDepth {
		return false
	}
	tag, ok := s.byte1()
	if !ok {
		return false
	}
	var size int
	switch tag {
	case tagList8:
		size, ok = s.uint(1)
	case tagList16:
		size, ok = s.uint(2)
	default:
		return false
	}
	if !ok || size == 0 || !s.value() {
		return false
	}
	nattr := (size - 1) / 2
	if 2*nattr > len(s.buf)-s.off {
		return false
	}
	s.attrs += nattr
	for range nattr {
		if !s.value() || !s.value() {
			return false
		}
	}
	if size%2 == 1 {
		return true
	}
	tag, ok = s.byte1()
	if !ok {
		return false
	}
	switch tag {
	case tagListEmpty:
		return true
	case tagList8, tagList16:
		n := 1
		if tag == tagList16 {
			n = 2
		}
		count, ok := s.uint(n)
		if !ok || 3*count > len(s.buf)-s.off {
			return false
		}
		for range count {
			// Counted one by one, so lists that claim more than they
			// hold cannot inflate the total.
			s.nodes++
			if !s.node(depth + 1) {
				return false
			}
		}
		return true
	case tagBinary8, tagBinary20, tagBinary32:
		l, ok := s.binaryLen(tag)
		return ok && s.skip(l)
	}
	s.off--
	// Content that is a string is converted to bytes by the decoder; it
	// does not use the string arena.
	strs := s.strs
	ok = s.value()
	s.strs = strs
	return ok
}

func (s *scanner) binaryLen(tag byte) (int, bool) {
	switch tag {
	case tagBinary8:
		return s.uint(1)
	case tagBinary20:
		v, ok := s.uint(3)
		return v & 0xFFFFF, ok
	}
	return s.uint(4)
}

// value skips a string or JID, counting the arena bytes it will need.
func (s *scanner) value() bool {
	tag, ok := s.byte1()
	if !ok {
		return false
	}
	switch tag {
	case tagJIDPair:
		return s.str() && s.str()
	case tagADJID:
		return s.skip(2) && s.str()
	case tagFBJID:
		return s.str() && s.skip(2) && s.str()
	case tagInteropJID:
		return s.str() && s.skip(4) && s.str()
	}
	s.off--
	return s.str()
}

// str skips a plain string (never a JID: no recursion).
func (s *scanner) str() bool {
	tag, ok := s.byte1()
	if !ok {
		return false
	}
	switch {
	case tag == tagListEmpty || tag < tagDict0:
		return true
	case tag <= tagDict3:
		return s.skip(1)
	}
	switch tag {
	case tagBinary8, tagBinary20, tagBinary32:
		// Count only what the input holds: a claimed length must not size
		// an allocation.
		l, ok := s.binaryLen(tag)
		if !ok || !s.skip(l) {
			return false
		}
		s.strs += l
		return true
	case tagNibble8, tagHex8:
		h, ok := s.byte1()
		l := int(h & 0x7F)
		if !ok || !s.skip(l) {
			return false
		}
		s.strs += 2 * l
		return true
	}
	return false
}
