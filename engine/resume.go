package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store"
)

// Noise IK resume decisions (CHANGES-2026 §7). The driver calls
// ChooseHandshake before each connect of a registered device and
// ClassifyHandshake with what the handshake returned; it keeps one flag of
// its own, "IK disabled in this process", set when a verdict says so.

// HandshakeChoice is how the next connect opens.
type HandshakeChoice struct {
	// Mode is noise.ModeIK (resume) or noise.ModeXX (full handshake).
	Mode noise.Mode
	// Resume is the chain to resume to (transport.ClientConfig.Resume);
	// nil for XX.
	Resume *noise.CertInfo
	// Why says, for logs, why the choice was made.
	Why string
}

// ChooseHandshake decides between IK and XX for the next connect of d:
// IK when d is registered (Paired), has a stored chain, IK is not disabled
// (ikDisabled: Config.DisableResume, or an IK failure earlier in this
// process) and both certificates are inside their validity windows at now.
// Everything else is XX, as is the first connect after pairing (no chain
// stored yet).
func ChooseHandshake(d *store.Device, now time.Time, ikDisabled bool) HandshakeChoice {
	xx := func(why string) HandshakeChoice { return HandshakeChoice{Mode: noise.ModeXX, Why: why} }
	switch {
	case !d.Paired():
		return xx("not registered")
	case ikDisabled:
		return xx("resume disabled")
	case d.ServerChain.IsZero():
		return xx("no stored server chain")
	}
	cert := CertFromChain(d.ServerChain)
	if err := cert.CheckValidity(now); err != nil {
		return xx(fmt.Sprintf("stored server chain unusable: %v", err))
	}
	return HandshakeChoice{Mode: noise.ModeIK, Resume: cert, Why: "stored server chain valid"}
}

// HandshakeResult names what a handshake attempt came to.
type HandshakeResult int

// Handshake results.
const (
	// ResultXX: a full handshake succeeded; its verified chain is stored
	// for the next connect (the first connect after pairing ends here).
	ResultXX HandshakeResult = iota + 1
	// ResultIK: the resume was accepted.
	ResultIK
	// ResultFallback: the server answered the resume with XXfallback (its
	// key rotated); the new, verified chain replaces the stored one.
	ResultFallback
	// ResultResumeFailed: the resume failed before the pivot (dropped by
	// the server, or an answer that did not decrypt or verify): forget
	// the chain, disable IK for the process, reconnect at once with XX.
	ResultResumeFailed
	// ResultFailed: any other failure (timeout, network, context, a full
	// handshake's bad chain): nothing changes, the usual backoff applies.
	ResultFailed
)

func (r HandshakeResult) String() string {
	switch r {
	case ResultXX:
		return "xx"
	case ResultIK:
		return "ik"
	case ResultFallback:
		return "xxfallback"
	case ResultResumeFailed:
		return "resume-failed"
	case ResultFailed:
		return "failed"
	}
	return fmt.Sprintf("HandshakeResult(%d)", int(r))
}

// HandshakeVerdict is what the driver does after a handshake attempt.
type HandshakeVerdict struct {
	Result HandshakeResult
	// PutChain: set Device.ServerChain to Chain (zero: clear it) and store
	// the device. False when the stored chain is already right.
	PutChain bool
	Chain    store.ServerChain
	// DisableIK: set the process's "IK disabled" flag (every later
	// ChooseHandshake gets ikDisabled = true).
	DisableIK bool
	// RetryNow: reconnect at once (with XX), without backoff; the
	// failure was the resume's, not the server's or the network's.
	RetryNow bool
}

// ClassifyHandshake turns the outcome of a handshake into a verdict.
// stored is the device's chain before the attempt; mode and got are
// Conn.Mode() and Conn.ServerCert() on success (err nil), ignored on
// failure. A failure wrapping noise.ErrResumeFailed (which
// transport.ErrResumeFailed does) is the crypto-fatal case; timeouts and
// context errors never wrap it, so they keep the chain.
func ClassifyHandshake(stored store.ServerChain, mode noise.Mode, got *noise.CertInfo, err error) HandshakeVerdict {
	if err != nil {
		if errors.Is(err, noise.ErrResumeFailed) {
			return HandshakeVerdict{Result: ResultResumeFailed, PutChain: !stored.IsZero(), DisableIK: true, RetryNow: true}
		}
		return HandshakeVerdict{Result: ResultFailed}
	}
	v := HandshakeVerdict{}
	switch mode {
	case noise.ModeIK:
		v.Result = ResultIK
	case noise.ModeXXFallback:
		v.Result = ResultFallback
	default:
		v.Result = ResultXX
	}
	if got != nil {
		// A resume accepted without a chain in its payload returns the
		// stored one: nothing to write then.
		v.Chain = ChainFromCert(got)
		v.PutChain = !SameChain(stored, v.Chain)
	} else {
		v.Chain = stored
	}
	return v
}

// ChainFromCert is what a verified chain certified, as the store keeps
// it. A nil cert gives the zero chain.
func ChainFromCert(c *noise.CertInfo) store.ServerChain {
	if c == nil {
		return store.ServerChain{}
	}
	return store.ServerChain{
		IntermediateSerial:    c.IntermediateSerial,
		IntermediateKey:       c.IntermediateKey,
		IntermediateNotBefore: c.IntermediateNotBefore,
		IntermediateNotAfter:  c.IntermediateNotAfter,
		LeafSerial:            c.LeafSerial,
		LeafKey:               c.LeafKey,
		LeafNotBefore:         c.LeafNotBefore,
		LeafNotAfter:          c.LeafNotAfter,
	}
}

// CertFromChain is a stored chain as transport.ClientConfig.Resume takes
// it; nil for the zero chain.
func CertFromChain(c store.ServerChain) *noise.CertInfo {
	if c.IsZero() {
		return nil
	}
	return &noise.CertInfo{
		IntermediateSerial:    c.IntermediateSerial,
		IntermediateKey:       c.IntermediateKey,
		IntermediateNotBefore: c.IntermediateNotBefore,
		IntermediateNotAfter:  c.IntermediateNotAfter,
		LeafSerial:            c.LeafSerial,
		LeafKey:               c.LeafKey,
		LeafNotBefore:         c.LeafNotBefore,
		LeafNotAfter:          c.LeafNotAfter,
	}
}

// SameChain reports whether two stored chains are equal (times as
// instants, at the certificates' one-second resolution).
func SameChain(a, b store.ServerChain) bool {
	return a.IntermediateSerial == b.IntermediateSerial && a.IntermediateKey.Equal(b.IntermediateKey) &&
		a.IntermediateNotBefore.Unix() == b.IntermediateNotBefore.Unix() && a.IntermediateNotAfter.Unix() == b.IntermediateNotAfter.Unix() &&
		a.LeafSerial == b.LeafSerial && a.LeafKey.Equal(b.LeafKey) &&
		a.LeafNotBefore.Unix() == b.LeafNotBefore.Unix() && a.LeafNotAfter.Unix() == b.LeafNotAfter.Unix()
}
