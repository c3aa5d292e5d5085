package walink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/walinkdev/walink/jid"
)

// StoppedError is WaitReady's answer when the client stopped connecting
// before it was ready: Reason says why ("dial" for a first connect that
// failed, "closed" after Disconnect or Close, else the connection's end:
// "logged-out", "replaced", "outdated", "banned", "qr-expired", "fatal",
// "network" or "rate-limited" with reconnects disabled), Event is the
// event that reported it (LoggedOut, StreamReplaced, ClientOutdated,
// TemporaryBan, QRCodesExpired, ConnectFailure; nil when none did) and
// Err the dial error. errors.Is(err, ErrNotConnected) holds for it.
type StoppedError struct {
	Reason string
	Event  Event
	Err    error
}

func (e *StoppedError) Error() string {
	s := "walink: client stopped connecting: " + e.Reason
	if e.Event != nil {
		s += fmt.Sprintf(" (%T)", e.Event)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the dial error, if any.
func (e *StoppedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotConnected) hold.
func (e *StoppedError) Is(target error) bool { return target == ErrNotConnected }

// terminal reports whether ev ends the client's connecting for good
// (nothing reconnects after it).
func terminal(ev Event) bool {
	switch ev.(type) {
	case LoggedOut, StreamReplaced, ClientOutdated, TemporaryBan, QRCodesExpired, ConnectFailure:
		return true
	}
	return false
}

// WaitReady waits for the outcome of Connect's login and returns nil once
// the client is logged in and online (Connected was emitted) or, for a
// device that is not paired, WhatsApp offered pairing (the QR codes are
// being shown and PairWithCode may be called). It keeps waiting while the
// client reconnects by itself. It returns a *StoppedError when the client
// stopped connecting first (logged out, refused, replaced, QR codes
// expired, Disconnect), ErrNotConnected when Connect was never called,
// ErrClosed after Close, and ctx's error when ctx ends first.
//
// A service that bounds how many logins it runs at once holds its slot
// until WaitReady returns instead of guessing how long a login takes.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		c.mu.Lock()
		cn, r, wait, closed, last := c.cur, c.run, c.connWait, c.closed, c.lastEnd
		good := cn != nil && (cn.connected || cn.ready)
		c.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case good:
			return nil
		case r == nil && last != nil:
			return last
		case r == nil:
			return ErrNotConnected
		}
		select {
		case <-wait:
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("walink: waiting for the login: %w", ctx.Err())
		}
	}
}

// DialGate is the type of Config.DialGate: it waits for a slot (or ctx's
// end) and returns the function that gives the slot back.
type DialGate = func(ctx context.Context) (release func(), err error)

// LimitDials returns a DialGate that lets at most n dials (and their
// logins) run at once across every client it is given to; n < 1 means 1.
// A process running many clients passes one gate to all of them so that
// their reconnects after an outage do not all hit WhatsApp at once.
func LimitDials(n int) DialGate {
	sem := make(chan struct{}, max(n, 1))
	return func(ctx context.Context) (func(), error) {
		select {
		case sem <- struct{}{}:
			return sync.OnceFunc(func() { <-sem }), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// acquireGate waits for a Config.DialGate slot, held until releaseGate:
// once the server answered the login (pairing offered, paired, or
// connected), the connection ended, or twice HandshakeTimeout after the
// slot was taken at the latest, so a server that never answers cannot
// keep it.
func (c *Client) acquireGate(ctx context.Context) error {
	if c.cfg.DialGate == nil {
		return nil
	}
	rel, err := c.cfg.DialGate(ctx)
	if err != nil {
		return fmt.Errorf("walink: waiting for a dial slot: %w", err)
	}
	if rel == nil {
		rel = func() {}
	}
	var once sync.Once
	var t *time.Timer
	release := func() {
		once.Do(func() {
			t.Stop()
			rel()
		})
	}
	c.mu.Lock()
	t = time.AfterFunc(2*c.cfg.HandshakeTimeout, release)
	prev := c.gateHeld
	c.gateHeld = release
	c.mu.Unlock()
	if prev != nil {
		prev() // not expected: dials of one client are sequential
	}
	return nil
}

// releaseGate gives back the held dial slot, if any. Idempotent.
func (c *Client) releaseGate() {
	c.mu.Lock()
	rel := c.gateHeld
	c.gateHeld = nil
	c.mu.Unlock()
	if rel != nil {
		rel()
	}
}

// PairCode is a pair code and the instant (of Config.Now's clock) after
// which WhatsApp no longer accepts it.
type PairCode struct {
	Code    string
	Expires time.Time
}

// notePairCode records the code the session just issued (on the driver,
// before the waiting PairWithCode is answered).
func (c *Client) notePairCode(code string, expires time.Time) {
	c.mu.Lock()
	c.lastCode = PairCode{Code: code, Expires: expires}
	c.mu.Unlock()
}

// RequestPairCode is PairWithCode returning the code's expiry too (the
// PairingCode event carries it as well). Errors are PairWithCode's.
func (c *Client) RequestPairCode(ctx context.Context, opts PairCodeOptions) (PairCode, error) {
	code, err := c.PairWithCode(ctx, opts)
	if err != nil {
		return PairCode{}, err
	}
	c.mu.Lock()
	pc := c.lastCode
	c.mu.Unlock()
	if pc.Code != code {
		return PairCode{}, errors.New("walink: internal error: pair code issued without its expiry")
	}
	return pc, nil
}

// DeviceInfo is what is known of the paired device: its own JIDs and what
// the phone told at pairing (Platform, BusinessName) or the account's
// push name as last learned.
type DeviceInfo struct {
	ID           jid.JID // phone:device@s.whatsapp.net
	LID          jid.JID // the device's LID
	Platform     string  // the phone's platform, e.g. "android"
	PushName     string
	BusinessName string
}

// Device returns the paired device's details, and false when the client
// holds no paired device (not loaded yet by Connect, never paired, or
// logged out). It reads the client's copy: no IO.
func (c *Client) Device() (DeviceInfo, bool) {
	d := c.device()
	if !d.Paired() {
		return DeviceInfo{}, false
	}
	return DeviceInfo{ID: d.ID, LID: d.LID, Platform: d.Platform, PushName: d.PushName, BusinessName: d.BusinessName}, true
}
