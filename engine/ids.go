package engine

import (
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
)

// IDs makes client IQ ids of the form "<b0>.<b1>-<n>": two random bytes in
// decimal, fixed for the client's lifetime, and a counter from 1 (the form
// whatsmeow uses, PROTOCOL.md §10). Safe for concurrent use.
//
// The zero IDs is not ready: use NewIDs, or Init on one kept inside a
// larger struct (no allocation of its own, none for its prefix).
type IDs struct {
	prefix [8]byte // "255.255-" at most
	plen   uint8
	n      atomic.Uint64
}

// NewIDs draws the prefix from rand.
func NewIDs(rand io.Reader) (*IDs, error) {
	ids := &IDs{}
	if err := ids.Init(rand); err != nil {
		return nil, err
	}
	return ids, nil
}

// Init draws the prefix from rand; call it once, before Next.
func (ids *IDs) Init(rand io.Reader) error {
	var b [2]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return fmt.Errorf("engine: reading randomness: %w", err)
	}
	p := strconv.AppendUint(ids.prefix[:0], uint64(b[0]), 10)
	p = append(p, '.')
	p = strconv.AppendUint(p, uint64(b[1]), 10)
	p = append(p, '-')
	ids.plen = uint8(len(p))
	return nil
}

// Next returns the next id.
func (ids *IDs) Next() string {
	var b [32]byte
	id := append(b[:0], ids.prefix[:ids.plen]...)
	return string(strconv.AppendUint(id, ids.n.Add(1), 10))
}
