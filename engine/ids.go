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
type IDs struct {
	prefix string
	n      atomic.Uint64
}

// NewIDs draws the prefix from rand.
func NewIDs(rand io.Reader) (*IDs, error) {
	var b [2]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("engine: reading randomness: %w", err)
	}
	return &IDs{prefix: strconv.Itoa(int(b[0])) + "." + strconv.Itoa(int(b[1])) + "-"}, nil
}

// Next returns the next id.
func (ids *IDs) Next() string {
	return ids.prefix + strconv.FormatUint(ids.n.Add(1), 10)
}
