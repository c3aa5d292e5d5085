//go:build !linux

package transport

import "errors"

const canPark = false

// Elsewhere a Poller parks nothing (see Poller).
type poller struct{}

var errNoPoller = errors.New("transport: poller: not on this system")

// NewPoller returns a Poller; on this system Park reports false for it.
func NewPoller() (*Poller, error) { return &Poller{}, nil }

func (p *Poller) add(uintptr, func()) (pollRef, error) { return pollRef{}, errNoPoller }

func (p *Poller) take(int32, uint32) func() { return nil }

// Close does nothing on this system; it is idempotent.
func (p *Poller) Close() error { return nil }
