package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/storetest"
)

func resumeTestChain(t *testing.T, seed uint64, nb, na time.Time) store.ServerChain {
	c := storetest.NewServerChain(t, seed)
	c.IntermediateNotBefore, c.IntermediateNotAfter = nb.Add(-time.Hour), na.Add(time.Hour)
	c.LeafNotBefore, c.LeafNotAfter = nb, na
	return c
}

func TestChooseHandshake(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	paired := storetest.NewDevice(t, 1, true)
	paired.ServerChain = resumeTestChain(t, 1, now.Add(-time.Hour), now.Add(time.Hour))
	noChain := storetest.NewDevice(t, 2, true)
	noChain.ServerChain = store.ServerChain{}
	unpaired := storetest.NewDevice(t, 3, false)
	unpaired.ServerChain = paired.ServerChain
	interExpired := *paired
	interExpired.ServerChain.IntermediateNotAfter = now.Add(-time.Second)
	leafFuture := *paired
	leafFuture.ServerChain.LeafNotBefore = now.Add(time.Second)
	edge := *paired // windows are inclusive, in whole seconds
	edge.ServerChain.LeafNotAfter = now.Add(999 * time.Millisecond)

	for _, tc := range []struct {
		name     string
		d        *store.Device
		disabled bool
		mode     noise.Mode
	}{
		{"valid chain", paired, false, noise.ModeIK},
		{"valid chain at the edge of its window", &edge, false, noise.ModeIK},
		{"IK disabled", paired, true, noise.ModeXX},
		{"first connect after pairing", noChain, false, noise.ModeXX},
		{"not registered", unpaired, false, noise.ModeXX},
		{"nil device", nil, false, noise.ModeXX},
		{"intermediate expired", &interExpired, false, noise.ModeXX},
		{"leaf not yet valid", &leafFuture, false, noise.ModeXX},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ChooseHandshake(tc.d, now, tc.disabled)
			if c.Mode != tc.mode || (c.Resume != nil) != (tc.mode == noise.ModeIK) || c.Why == "" {
				t.Fatalf("got %+v, want %v", c, tc.mode)
			}
			if c.Resume != nil && !c.Resume.LeafKey.Equal(tc.d.ServerChain.LeafKey) {
				t.Fatal("resume to another key than the stored leaf")
			}
		})
	}
}

func TestChainConversionRoundTrip(t *testing.T) {
	c := storetest.NewServerChain(t, 5)
	if back := ChainFromCert(CertFromChain(c)); !SameChain(c, back) || storetest.ChainDiff(c, back) != "" {
		t.Fatalf("round trip changed the chain: %s", storetest.ChainDiff(c, back))
	}
	if CertFromChain(store.ServerChain{}) != nil || !ChainFromCert(nil).IsZero() {
		t.Fatal("zero chain does not map to nil")
	}
	d := c
	d.LeafSerial++
	if SameChain(c, d) {
		t.Fatal("SameChain ignores the leaf serial")
	}
}

func TestClassifyHandshake(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	stored := resumeTestChain(t, 1, now.Add(-time.Hour), now.Add(time.Hour))
	rotated := resumeTestChain(t, 2, now.Add(-time.Hour), now.Add(time.Hour))
	// What transport returns, without importing it: its ErrResumeFailed
	// wraps noise.ErrResumeFailed.
	resumeFailed := fmt.Errorf("transport: handshake: server hello: %w", fmt.Errorf("%w: %w", fmt.Errorf("transport: %w", noise.ErrResumeFailed), noise.ErrDecrypt))
	timeout := fmt.Errorf("transport: handshake: read server hello: %w", os.ErrDeadlineExceeded)
	certErr := fmt.Errorf("transport: handshake: server hello: %w", &noise.CertError{Reason: noise.CertBadSignature})

	for _, tc := range []struct {
		name   string
		stored store.ServerChain
		mode   noise.Mode
		got    *noise.CertInfo
		err    error
		want   HandshakeVerdict
	}{
		{"first XX stores the chain", store.ServerChain{}, noise.ModeXX, CertFromChain(stored), nil,
			HandshakeVerdict{Result: ResultXX, PutChain: true, Chain: stored}},
		{"XX with the same chain writes nothing", stored, noise.ModeXX, CertFromChain(stored), nil,
			HandshakeVerdict{Result: ResultXX, Chain: stored}},
		{"IK accepted", stored, noise.ModeIK, CertFromChain(stored), nil,
			HandshakeVerdict{Result: ResultIK, Chain: stored}},
		{"IK accepted with a refreshed chain", stored, noise.ModeIK, CertFromChain(rotated), nil,
			HandshakeVerdict{Result: ResultIK, PutChain: true, Chain: rotated}},
		{"XXfallback persists the new chain", stored, noise.ModeXXFallback, CertFromChain(rotated), nil,
			HandshakeVerdict{Result: ResultFallback, PutChain: true, Chain: rotated}},
		{"resume failed before the pivot", stored, 0, nil, resumeFailed,
			HandshakeVerdict{Result: ResultResumeFailed, PutChain: true, DisableIK: true, RetryNow: true}},
		{"timeout keeps the chain", stored, 0, nil, timeout, HandshakeVerdict{Result: ResultFailed}},
		{"cancelled keeps the chain", stored, 0, nil, fmt.Errorf("x: %w", context.Canceled), HandshakeVerdict{Result: ResultFailed}},
		{"XX chain refused keeps the chain", stored, 0, nil, certErr, HandshakeVerdict{Result: ResultFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ClassifyHandshake(tc.stored, tc.mode, tc.got, tc.err)
			if v.Result != tc.want.Result || v.PutChain != tc.want.PutChain || v.DisableIK != tc.want.DisableIK || v.RetryNow != tc.want.RetryNow {
				t.Fatalf("verdict %+v, want %+v", v, tc.want)
			}
			if v.PutChain && !SameChain(v.Chain, tc.want.Chain) {
				t.Fatalf("chain to put: %s", storetest.ChainDiff(tc.want.Chain, v.Chain))
			}
		})
	}
}

// The full cycle on one device record, as the driver runs it: pair (no
// chain) → XX stores → IK → rotation: XXfallback stores the new chain →
// IK to the new key → a failed resume clears the chain and disables IK →
// XX from then on in this process, though a chain is stored again.
func TestResumeCycle(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	first := resumeTestChain(t, 1, now.Add(-time.Hour), now.Add(24*time.Hour))
	second := resumeTestChain(t, 2, now.Add(-time.Hour), now.Add(24*time.Hour))
	d := storetest.NewDevice(t, 9, true)
	d.ServerChain = store.ServerChain{}
	disabled := false
	step := func(serverChain store.ServerChain, serverAccepts bool, failure error) (noise.Mode, HandshakeVerdict) {
		t.Helper()
		c := ChooseHandshake(d, now, disabled)
		var mode noise.Mode
		var got *noise.CertInfo
		switch {
		case failure != nil:
		case c.Mode == noise.ModeIK && serverAccepts && c.Resume.LeafKey.Equal(serverChain.LeafKey):
			mode, got = noise.ModeIK, c.Resume
		case c.Mode == noise.ModeIK:
			mode, got = noise.ModeXXFallback, CertFromChain(serverChain)
		default:
			mode, got = noise.ModeXX, CertFromChain(serverChain)
		}
		v := ClassifyHandshake(d.ServerChain, mode, got, failure)
		if v.PutChain {
			d.ServerChain = v.Chain
		}
		disabled = disabled || v.DisableIK
		return c.Mode, v
	}
	if m, v := step(first, true, nil); m != noise.ModeXX || v.Result != ResultXX || !SameChain(d.ServerChain, first) {
		t.Fatalf("after pairing: %v %+v", m, v)
	}
	if m, v := step(first, true, nil); m != noise.ModeIK || v.Result != ResultIK || v.PutChain {
		t.Fatalf("reconnect: %v %+v", m, v)
	}
	if m, v := step(second, true, nil); m != noise.ModeIK || v.Result != ResultFallback || !SameChain(d.ServerChain, second) {
		t.Fatalf("after rotation: %v %+v", m, v)
	}
	if m, v := step(second, true, nil); m != noise.ModeIK || v.Result != ResultIK {
		t.Fatalf("after fallback: %v %+v", m, v)
	}
	if m, v := step(second, false, fmt.Errorf("%w", noise.ErrResumeFailed)); m != noise.ModeIK || v.Result != ResultResumeFailed || !d.ServerChain.IsZero() || !disabled {
		t.Fatalf("refused resume: %v %+v", m, v)
	}
	if m, v := step(second, true, nil); m != noise.ModeXX || v.Result != ResultXX || !SameChain(d.ServerChain, second) {
		t.Fatalf("after refusal: %v %+v", m, v)
	}
	if m, _ := step(second, true, nil); m != noise.ModeXX {
		t.Fatalf("IK tried again in a process that disabled it: %v", m)
	}
}

func TestParseClientExpiration(t *testing.T) {
	ib := func(attrs ...binxml.Attr) binxml.Node {
		return binxml.Node{Tag: "ib", Children: []binxml.Node{{Tag: "client_expiration", Attrs: attrs}}}
	}
	at, ok, err := ParseClientExpiration(ib(binxml.A("t", "1767225600")))
	if err != nil || !ok || !at.Equal(time.Unix(1767225600, 0)) {
		t.Fatalf("got %v %v %v", at, ok, err)
	}
	for _, n := range []binxml.Node{
		{Tag: "ib", Children: []binxml.Node{{Tag: "offline", Attrs: []binxml.Attr{binxml.A("count", "0")}}}},
		{Tag: "notification", Children: []binxml.Node{{Tag: "client_expiration", Attrs: []binxml.Attr{binxml.A("t", "1")}}}},
	} {
		if _, ok, err := ParseClientExpiration(n); ok || err != nil {
			t.Errorf("%s: ok %v err %v, want not mine", n.Tag, ok, err)
		}
	}
	for name, n := range map[string]binxml.Node{
		"no t":     ib(),
		"empty t":  ib(binxml.A("t", "")),
		"text":     ib(binxml.A("t", "soon")),
		"negative": ib(binxml.A("t", "-5")),
		"zero":     ib(binxml.A("t", "0")),
		"huge":     ib(binxml.A("t", "99999999999999")),
		"jid":      ib(binxml.AJ("t", jid.NewAD("15551234567", 1, jid.DefaultUserServer))),
	} {
		if _, ok, err := ParseClientExpiration(n); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ok %v err %v, want ErrMalformed", name, ok, err)
		}
	}
}
