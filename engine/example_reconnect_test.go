package engine_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store"
)

// Before each connect of a registered device the driver asks whether to
// resume with IK, and after the handshake what to store.
func ExampleChooseHandshake() {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	leaf := keys.MustPublicKey("142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b")
	d := &store.Device{ID: jid.NewAD("15551234567", 3, jid.DefaultUserServer)}

	// First connect after pairing: nothing stored, XX.
	c := engine.ChooseHandshake(d, now, false)
	fmt.Println(c.Mode, c.Why)

	// The XX handshake verified the server's chain; store it.
	got := &noise.CertInfo{LeafKey: leaf, LeafNotBefore: now.Add(-time.Hour), LeafNotAfter: now.Add(time.Hour),
		IntermediateNotBefore: now.Add(-time.Hour), IntermediateNotAfter: now.Add(time.Hour)}
	v := engine.ClassifyHandshake(d.ServerChain, noise.ModeXX, got, nil)
	if v.PutChain {
		d.ServerChain = v.Chain // and store.PutDevice
	}
	fmt.Println(v.Result, v.PutChain)

	// Next connect: IK.
	c = engine.ChooseHandshake(d, now, false)
	fmt.Println(c.Mode, c.Resume.LeafKey.Equal(leaf))

	// The server dropped the resume: forget the chain, no IK in this process.
	v = engine.ClassifyHandshake(d.ServerChain, 0, nil, fmt.Errorf("transport: %w", noise.ErrResumeFailed))
	fmt.Println(v.Result, v.PutChain, v.Chain.IsZero(), v.DisableIK, v.RetryNow)
	// Output:
	// XX no stored server chain
	// xx true
	// IK true
	// resume-failed true true true true
}

// A 405 leads to at most one fetch of the current version and one
// reconnect.
func ExampleOnClientOutdated() {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	builtIn := engine.Version{2, 3000, 1045368834}
	d := &store.Device{}
	inUse := engine.ChooseVersion(engine.Version{}, builtIn, d, now)
	fmt.Println(inUse.Version, inUse.Source)

	if a := engine.OnClientOutdated(inUse, d, now); a.Fetch {
		// fetched, err := (&waversion.Fetcher{URL: cfg.VersionURL}).Fetch(ctx)
		fetched := engine.Version{2, 3000, 1045369000}
		f := engine.AfterVersionFetch(inUse.Version, fetched, nil)
		d.WebVersion, d.WebVersionFetchedAt = f.Version.String(), now // and store.PutDevice
		fmt.Println(f.Reconnect, d.WebVersion)
	}
	// Refused again right away: final, no second fetch.
	inUse = engine.ChooseVersion(engine.Version{}, builtIn, d, now)
	a := engine.OnClientOutdated(inUse, d, now.Add(10*time.Second))
	fmt.Println(a.Fetch, a.GiveUp)

	// A failed fetch is final too.
	f := engine.AfterVersionFetch(builtIn, engine.Version{}, errors.New("http status 503"))
	fmt.Println(f.Reconnect, f.GiveUp != "")
	// Output:
	// 2.3000.1045368834 built-in
	// true 2.3000.1045369000
	// false WhatsApp refuses client version 2.3000.1045369000 although version 2.3000.1045369000 was fetched from WhatsApp Web 10s ago
	// false true
}
