package binxml

import "fmt"

// Dictionary is one token dictionary (version 2 or 3). Use [DictV3],
// [DictV2] or [DictionaryFor]; a Dictionary literal with only Version set
// behaves like the built-in one of that version.
type Dictionary struct {
	Version byte

	single *[236]string
	double *[4][256]string
	// index maps a token to its code: < 256 is a single-byte token,
	// otherwise (dict+1)<<8 | index for DICTIONARY_dict.
	index  map[string]uint16
	maxLen int // longest token; longer strings skip the map lookup
	// lens[c] has bit l set when some token of length l (< 64) starts
	// with c: most non-tokens (numbers, ids) fail this test and skip the
	// map lookup.
	lens [256]uint64
	// table is an open-addressing hash of the tokens, faster than a Go map
	// for these short keys; it is static, so probe chains are bounded.
	table []tokenSlot
}

type tokenSlot struct {
	s    string
	code uint16
}

// tokenHash is FNV-1a. Hashing only a few characters would be O(1) but
// the v2 dictionary has runs of tokens that differ only inside; tokens are
// short, so the full hash costs a few nanoseconds.
func tokenHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// The dictionaries; DictV3 is the client's and the default.
var (
	DictV3 = newDictionary(3, &singleByteV3, &doubleByteV3)
	DictV2 = newDictionary(2, &singleByteV2, &doubleByteV2)
)

func newDictionary(v byte, single *[236]string, double *[4][256]string) *Dictionary {
	d := &Dictionary{Version: v, single: single, double: double, index: make(map[string]uint16, 236+4*256)}
	add := func(s string, code uint16) {
		d.index[s] = code
		d.maxLen = max(d.maxLen, len(s))
		if len(s) < 64 {
			d.lens[s[0]] |= 1 << len(s)
		} else {
			d.lens[s[0]] |= 1 << 63 // 63 stands for "63 or longer"
		}
	}
	for i, s := range single {
		if i > 0 && s != "" {
			add(s, uint16(i))
		}
	}
	for n := range double {
		for i, s := range double[n] {
			if s != "" {
				add(s, uint16(n+1)<<8|uint16(i))
			}
		}
	}
	d.table = make([]tokenSlot, 4096) // > 3x the 1259 tokens of a dictionary
	mask := uint32(len(d.table) - 1)
	for s, code := range d.index {
		i := tokenHash(s) & mask
		for d.table[i].s != "" {
			i = (i + 1) & mask
		}
		d.table[i] = tokenSlot{s, code}
	}
	return d
}

// maxProbe returns the longest probe chain of the token table.
func (d *Dictionary) maxProbe() int {
	worst := 0
	mask := uint32(len(d.table) - 1)
	for s := range d.index {
		n := 1
		for i := tokenHash(s) & mask; d.table[i].s != s; i = (i + 1) & mask {
			n++
		}
		worst = max(worst, n)
	}
	return worst
}

// DictionaryFor returns the dictionary for a connection header's 4th byte.
func DictionaryFor(version byte) (*Dictionary, error) {
	switch version {
	case 3:
		return DictV3, nil
	case 2:
		return DictV2, nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnknownDictionary, version)
}

// lookup returns the token code of s (see index).
func (d *Dictionary) lookup(s string) (uint16, bool) {
	if len(s) == 0 || len(s) > d.maxLen || d.lens[s[0]]&(1<<min(len(s), 63)) == 0 {
		return 0, false
	}
	mask := uint32(len(d.table) - 1)
	for i := tokenHash(s) & mask; ; i = (i + 1) & mask {
		switch d.table[i].s {
		case s:
			return d.table[i].code, true
		case "":
			return 0, false
		}
	}
}

// resolve returns the built-in dictionary for a bare Dictionary{Version: v}.
func (d *Dictionary) resolve() (*Dictionary, error) {
	if d == nil {
		return DictV3, nil
	}
	if d.index != nil {
		return d, nil
	}
	return DictionaryFor(d.Version)
}

// Token returns the string for a single-byte token (1..235), or "" and
// false.
func (d *Dictionary) Token(b byte) (string, bool) {
	d, err := d.resolve()
	if err != nil || b == 0 || int(b) >= len(d.single) {
		return "", false
	}
	return d.single[b], true
}

// DoubleToken returns the string at index i of double-byte dictionary n
// (0..3), or "" and false.
func (d *Dictionary) DoubleToken(n, i byte) (string, bool) {
	d, err := d.resolve()
	if err != nil || n > 3 {
		return "", false
	}
	s := d.double[n][i]
	return s, s != ""
}

// Lookup reports how s is tokenised: single-byte token b (double false), or
// index b of dictionary n (double true).
func (d *Dictionary) Lookup(s string) (n, b byte, double, ok bool) {
	d, err := d.resolve()
	if err != nil {
		return 0, 0, false, false
	}
	code, ok := d.index[s]
	if !ok {
		return 0, 0, false, false
	}
	if code < 256 {
		return 0, byte(code), false, true
	}
	return byte(code>>8) - 1, byte(code), true, true
}
