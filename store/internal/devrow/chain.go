package devrow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// ChainV1 starts the clear form of a stored server chain:
//
//	0xC1 ‖ intermediate serial u32 ‖ intermediate key [32] ‖ not before i64 ‖ not after i64
//	     ‖ leaf serial u32         ‖ leaf key [32]         ‖ not before i64 ‖ not after i64
//
// integers big-endian, times in unix seconds (the certificates' own
// resolution). Its first byte differs from SealedV1, so a column tells by
// its first byte whether it is sealed.
const ChainV1 = 0xC1

// chainLen is the length of a ChainV1 encoding.
const chainLen = 1 + 2*(4+keys.Size+8+8)

// EncodeChain returns the ChainV1 encoding of c.
func EncodeChain(c store.ServerChain) []byte {
	b := make([]byte, 0, chainLen)
	b = append(b, ChainV1)
	cert := func(serial uint32, key keys.PublicKey, nb, na time.Time) {
		b = binary.BigEndian.AppendUint32(b, serial)
		b = append(b, key.Bytes()...)
		b = binary.BigEndian.AppendUint64(b, uint64(nb.Unix()))
		b = binary.BigEndian.AppendUint64(b, uint64(na.Unix()))
	}
	cert(c.IntermediateSerial, c.IntermediateKey, c.IntermediateNotBefore, c.IntermediateNotAfter)
	cert(c.LeafSerial, c.LeafKey, c.LeafNotBefore, c.LeafNotAfter)
	return b
}

// errChain is wrapped into the store's Corrupt error by the caller.
var errChain = errors.New("not a ChainV1 encoding")

// DecodeChain parses a ChainV1 encoding.
func DecodeChain(b []byte) (store.ServerChain, error) {
	var c store.ServerChain
	if len(b) != chainLen || b[0] != ChainV1 {
		return c, fmt.Errorf("%w (%d bytes)", errChain, len(b))
	}
	p := b[1:]
	cert := func() (uint32, keys.PublicKey, time.Time, time.Time, error) {
		serial := binary.BigEndian.Uint32(p)
		key, err := keys.PublicKeyFromBytes(p[4 : 4+keys.Size])
		q := p[4+keys.Size:]
		nb := time.Unix(int64(binary.BigEndian.Uint64(q)), 0).UTC()
		na := time.Unix(int64(binary.BigEndian.Uint64(q[8:])), 0).UTC()
		p = q[16:]
		return serial, key, nb, na, err
	}
	var err error
	if c.IntermediateSerial, c.IntermediateKey, c.IntermediateNotBefore, c.IntermediateNotAfter, err = cert(); err != nil {
		return store.ServerChain{}, fmt.Errorf("%w: intermediate key: %w", errChain, err)
	}
	if c.LeafSerial, c.LeafKey, c.LeafNotBefore, c.LeafNotAfter, err = cert(); err != nil {
		return store.ServerChain{}, fmt.Errorf("%w: leaf key: %w", errChain, err)
	}
	if c.LeafKey.IsZero() {
		return store.ServerChain{}, fmt.Errorf("%w: zero leaf key", errChain)
	}
	return c, nil
}

// OpenBlob returns the clear form of a variable-length column that
// starts with clearTag when in the clear and with SealedV1 when sealed.
func (s Secrets) OpenBlob(col string, owner []byte, id uint32, b []byte, clearTag byte) ([]byte, error) {
	e := s.errs()
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: %s is empty", e.Corrupt, col)
	case b[0] == clearTag:
		return b, nil
	case b[0] != SealedV1:
		return nil, fmt.Errorf("%w: %s has an unknown format", e.Corrupt, col)
	case s.C == nil:
		return nil, fmt.Errorf("%w (column %s)", e.NoCipher, col)
	}
	pt, err := s.C.Open(b[1:], aad(col, owner, id))
	if errors.Is(err, e.Decrypt) || errors.Is(err, generic.Decrypt) {
		return nil, fmt.Errorf("%s: %w (column %s)", e.Pkg, e.Decrypt, col)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: opening %s: %w", e.Pkg, col, err)
	}
	return pt, nil
}
