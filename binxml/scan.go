package binxml

// scan is a pre-pass over node bytes that counts what decoding will
// allocate (child nodes, attributes, string bytes), so the decoder can make
// one exactly sized slice of each instead of one per node. It validates
// nothing: on anything odd it stops, and the decoder, which does validate,
// reports the error or falls back to allocating more. It keeps the count
// of siblings left at each level on its own stack rather than recursing.
func scan(buf []byte) (nodes, attrs, strs int) {
	var left [MaxDepth + 1]uint16 // siblings still to walk, per open level
	depth := 0
	off := 0
	for {
		// One node at off.
		if off+2 > len(buf) {
			return nodes, attrs, strs
		}
		var size uint
		switch buf[off] {
		case tagList8:
			size = uint(buf[off+1])
			off += 2
		case tagList16:
			if off+3 > len(buf) {
				return nodes, attrs, strs
			}
			size = uint(buf[off+1])<<8 | uint(buf[off+2])
			off += 3
		default:
			return nodes, attrs, strs
		}
		if size == 0 || off >= len(buf) {
			return nodes, attrs, strs
		}
		if buf[off] < tagDict0 {
			off++
		} else {
			n := 0
			if off, n = skipStr(buf, off); off < 0 {
				return nodes, attrs, strs
			}
			strs += n
		}
		if nattr := int((size - 1) / 2); nattr > 0 {
			if 2*nattr > len(buf)-off {
				return nodes, attrs, strs
			}
			attrs += nattr
			for range nattr {
				n := 0
				if off < len(buf) && buf[off] < tagDict0 {
					off++
				} else if off, n = skipStr(buf, off); off < 0 {
					return nodes, attrs, strs
				}
				strs += n
				if off < len(buf) && buf[off] < tagDict0 {
					off++
				} else if off, n = skipValue(buf, off); off < 0 {
					return nodes, attrs, strs
				}
				strs += n
			}
		}
		if size%2 == 0 {
			if off+2 > len(buf) {
				return nodes, attrs, strs
			}
			tag := buf[off]
			switch tag {
			case tagBinary8:
				l := int(buf[off+1])
				if off += 2; l > len(buf)-off {
					return nodes, attrs, strs
				}
				off += l
			case tagList8, tagList16:
				count := int(buf[off+1])
				off += 2
				if tag == tagList16 {
					if off >= len(buf) {
						return nodes, attrs, strs
					}
					count = count<<8 | int(buf[off])
					off++
				}
				if 3*count > len(buf)-off {
					return nodes, attrs, strs
				}
				if count > 0 {
					// Descend: the children come next. They are counted
					// one by one as they start, so lists that claim more
					// than they hold cannot inflate the total.
					if depth == MaxDepth {
						return nodes, attrs, strs
					}
					left[depth] = uint16(count)
					depth++
					nodes++
					continue
				}
			case tagListEmpty:
				off++
			case tagBinary20, tagBinary32:
				l, next := binaryLen(buf, tag, off+1)
				if next < 0 || l < 0 || l > len(buf)-next {
					return nodes, attrs, strs
				}
				off = next + l
			default:
				// Content that is a string is converted to bytes by the
				// decoder; it does not use the string arena.
				if off, _ = skipValue(buf, off); off < 0 {
					return nodes, attrs, strs
				}
			}
		}
		// The node is done: go on with its next sibling, or close levels.
		for {
			if depth == 0 {
				return nodes, attrs, strs
			}
			if left[depth-1]--; left[depth-1] > 0 {
				nodes++
				break
			}
			depth--
		}
	}
}

// binaryLen reads the length after the BINARY tag at off-1: it returns
// the length and the offset of the bytes, or -1 if the input ends first.
// The length may exceed what follows (and be negative where int has 32
// bits).
func binaryLen(buf []byte, tag byte, off int) (l, next int) {
	switch tag {
	case tagBinary8:
		if off >= len(buf) {
			return 0, -1
		}
		return int(buf[off]), off + 1
	case tagBinary20:
		if 3 > len(buf)-off {
			return 0, -1
		}
		return int(buf[off]&0x0F)<<16 | int(buf[off+1])<<8 | int(buf[off+2]), off + 3
	}
	if 4 > len(buf)-off {
		return 0, -1
	}
	return int(uint32(buf[off])<<24 | uint32(buf[off+1])<<16 | uint32(buf[off+2])<<8 | uint32(buf[off+3])), off + 4
}

// skipValue skips the string or JID at off; it returns the offset after
// it (or -1) and the arena bytes it will need.
func skipValue(buf []byte, off int) (next, strs int) {
	if off >= len(buf) {
		return -1, 0
	}
	n, m := 0, 0
	switch buf[off] {
	case tagJIDPair:
		if off, n = skipStr(buf, off+1); off < 0 {
			return -1, 0
		}
		off, m = skipStr(buf, off)
		return off, n + m
	case tagADJID:
		if off+3 > len(buf) {
			return -1, 0
		}
		return skipStr(buf, off+3)
	case tagFBJID, tagInteropJID:
		d := 2
		if buf[off] == tagInteropJID {
			d = 4
		}
		if off, n = skipStr(buf, off+1); off < 0 || d > len(buf)-off {
			return -1, 0
		}
		off, m = skipStr(buf, off+d)
		return off, n + m
	}
	return skipStr(buf, off)
}

// skipStr skips the plain string (never a JID: no recursion) at off; it
// returns the offset after it (or -1) and the arena bytes it will need.
func skipStr(buf []byte, off int) (next, strs int) {
	if off >= len(buf) {
		return -1, 0
	}
	tag := buf[off]
	off++
	switch {
	case tag < tagDict0: // tagListEmpty or a token
		return off, 0
	case tag <= tagDict3:
		if off >= len(buf) {
			return -1, 0
		}
		return off + 1, 0
	}
	switch tag {
	case tagBinary8:
		// Count only what the input holds: a claimed length must not size
		// an allocation.
		if off >= len(buf) {
			return -1, 0
		}
		l := int(buf[off])
		if off++; l > len(buf)-off {
			return -1, 0
		}
		return off + l, l
	case tagBinary20, tagBinary32:
		l, off := binaryLen(buf, tag, off)
		if off < 0 || l < 0 || l > len(buf)-off {
			return -1, 0
		}
		return off + l, l
	case tagNibble8, tagHex8:
		if off >= len(buf) {
			return -1, 0
		}
		l := int(buf[off] & 0x7F)
		if off++; l > len(buf)-off {
			return -1, 0
		}
		return off + l, 2 * l
	}
	return -1, 0
}
