package walink

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/waversion"
)

// Reconnecting like WhatsApp Web (CHANGES-2026 §7, §8): the driver side of
// engine's pure decisions. Everything here runs on the runner's goroutine
// between connections (dial, the 405 answer), when no session is alive, so
// the runner is then the device record's only writer; a version fetched
// ahead of a client_expiration deadline while connected is kept in memory
// and written by the next dial, before its session starts.

// ikDisabled is the process-wide "IK disabled" flag: a resume that failed
// before the pivot (the server dropped it, or its answer did not decrypt
// or verify) turns IK off for every client of the process, as WhatsApp
// Web does (CHANGES-2026 §7); only a new process tries IK again.
var ikDisabled atomic.Bool

// ResumeDisabledInProcess reports whether a failed Noise IK resume turned
// IK off for the rest of this process (every client then connects with
// XX).
func ResumeDisabledInProcess() bool { return ikDisabled.Load() }

// timerVersionRefetch is the driver's own timer kind (never stepped into
// the session): fetch the version ahead of a client_expiration deadline.
const timerVersionRefetch engine.TimerKind = 1 << 30

// versionState is the client's view of the version: the choice of the
// last dial and a version fetched ahead of an expiration. Guarded by c.mu.
type versionState struct {
	inUse      engine.VersionChoice
	prefetched engine.Version
	prefetchAt time.Time
	handshake  engine.HandshakeResult
	expiresAt  time.Time
}

// fetcher returns the version fetcher Config asks for; the HTTP client
// goes the way the WebSocket goes (Config.Proxy).
func (c *Client) fetcher() *waversion.Fetcher {
	return &waversion.Fetcher{URL: c.cfg.VersionURL, Client: waversion.NewHTTPClient(c.cfg.Proxy, nil), Timeout: c.cfg.VersionFetchTimeout}
}

// fetchVersion fetches once and releases the fetch's idle connections, so
// no transport goroutine outlives it.
func (c *Client) fetchVersion(ctx context.Context) (engine.Version, error) {
	f := c.fetcher()
	defer f.Client.CloseIdleConnections()
	return f.Fetch(ctx)
}

// VersionInUse returns the client version of the last connect ("2.3000.N")
// and where it came from ("pinned", "built-in" or "fetched"); before the
// first connect it is the version the next connect would use with the
// device loaded so far.
func (c *Client) VersionInUse() (version, source string) {
	c.mu.Lock()
	ch := c.ver.inUse
	d := c.dev
	c.mu.Unlock()
	if ch.Source == 0 {
		ch = engine.ChooseVersion(c.pinned, c.builtIn, d, c.now())
	}
	return ch.Version.String(), ch.Source.String()
}

// LastHandshake returns how the last handshake went: "xx", "ik"
// (resumed), "xxfallback" (the resume answered with a full handshake after
// a server key rotation), "resume-failed" (then retried at once with XX,
// whose result replaces it), "failed" (network, timeout, bad
// certificate), or "" before any.
func (c *Client) LastHandshake() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ver.handshake == 0 {
		return ""
	}
	return c.ver.handshake.String()
}

// ResumeStatus says whether device d's next connect resumes with Noise
// IK at now, and why (engine.ChooseHandshake's reason): what `walink
// status` shows. disabled is Config.DisableResume.
func ResumeStatus(d *store.Device, now time.Time, disabled bool) (ik bool, why string) {
	ch := engine.ChooseHandshake(d, now, disabled || ikDisabled.Load())
	return ch.Mode == noise.ModeIK, ch.Why
}

// VersionStatus says which version device d's next connect uses under
// pinned (Config.Version, "" for none) and its source: what `walink
// status` shows.
func VersionStatus(d *store.Device, pinned string, now time.Time) (version, source string, err error) {
	var p engine.Version
	if pinned != "" {
		if p, err = engine.ParseVersion(pinned); err != nil {
			return "", "", fmt.Errorf("%w: Version: %w", ErrInvalidConfig, err)
		}
	}
	b, _ := engine.ParseVersion(DefaultVersion)
	ch := engine.ChooseVersion(p, b, d, now)
	return ch.Version.String(), ch.Source.String(), nil
}

// applyPrefetched writes a version fetched ahead of an expiration (or
// refreshed because the stored one was stale) into d
// before a dial (the runner is the only writer then) and returns the
// device to dial with.
func (c *Client) applyPrefetched(ctx context.Context, d *store.Device) *store.Device {
	c.mu.Lock()
	v, at := c.ver.prefetched, c.ver.prefetchAt
	c.ver.prefetched = engine.Version{}
	c.mu.Unlock()
	if v == (engine.Version{}) || (d.WebVersion == v.String() && !d.WebVersionFetchedAt.Before(at)) {
		return d
	}
	nd := *d
	nd.WebVersion, nd.WebVersionFetchedAt = v.String(), at
	if err := c.st.PutDevice(ctx, &nd); err != nil {
		c.log.Warn("storing the version fetched ahead of expiration", "err", err)
		return d
	}
	c.setDevice(&nd)
	return &nd
}

// chooseHandshake is engine.ChooseHandshake with the client's switches.
func (c *Client) chooseHandshake(d *store.Device) engine.HandshakeChoice {
	return engine.ChooseHandshake(d, c.now(), c.cfg.DisableResume || ikDisabled.Load())
}

// afterHandshake carries out a handshake's verdict: it stores the chain
// when it changed (or clears it after a failed resume) and sets the
// process's IK flag. It returns the device as stored.
func (c *Client) afterHandshake(ctx context.Context, d *store.Device, v engine.HandshakeVerdict, err error) *store.Device {
	c.mu.Lock()
	c.ver.handshake = v.Result
	c.mu.Unlock()
	if v.DisableIK && !ikDisabled.Swap(true) {
		c.log.Warn("Noise IK resume failed; resuming disabled for this process", "err", err)
	}
	if !v.PutChain || !d.Paired() {
		return d
	}
	nd := *d
	nd.ServerChain = v.Chain
	if perr := c.st.PutDevice(ctx, &nd); perr != nil {
		// Not fatal: the next connect chooses from the old record.
		c.log.Warn("storing the server chain", "err", perr)
		return d
	}
	c.setDevice(&nd)
	return &nd
}

// recoverOutdated answers a failure 405 (the runner calls it after the
// connection ended with EndOutdated): one fetch, then reconnect once with
// a newer version, or give up with the reason. again says the runner
// already recovered once without a connect succeeding since: then it gives
// up without a fetch, whatever the store kept (the stored fetch time
// guards across processes). reconnect false means ClientOutdated was
// emitted (and is returned, for WaitReady), or the runner is stopping.
func (c *Client) recoverOutdated(ctx context.Context, again bool) (reconnect bool, gaveUp Event) {
	c.mu.Lock()
	inUse, d := c.ver.inUse, c.dev
	c.mu.Unlock()
	if d == nil {
		d = &store.Device{}
	}
	var rec waversion.Recovery
	if again {
		rec.GiveUp = fmt.Sprintf("WhatsApp refuses client version %s, fetched for the previous connect", inUse.Version)
	} else {
		f := c.fetcher()
		rec = f.Recover(ctx, inUse, d, c.now)
		f.Client.CloseIdleConnections()
	}
	if rec.Store && !d.NoiseKey.Public.IsZero() {
		nd := *d
		nd.WebVersion, nd.WebVersionFetchedAt = rec.Version.String(), rec.FetchedAt
		if err := c.st.PutDevice(context.WithoutCancel(ctx), &nd); err != nil {
			c.log.Warn("storing the fetched version", "err", err)
		} else {
			c.setDevice(&nd)
		}
	}
	if rec.Reconnect && ctx.Err() == nil {
		c.log.Info("client version refused; reconnecting with the current WhatsApp Web version", "refused", inUse.Version.String(), "version", rec.Version.String())
		return true, nil
	}
	if ctx.Err() != nil && rec.GiveUp == "" {
		return false, nil
	}
	msg := rec.GiveUp
	if msg == "" {
		msg = fmt.Sprintf("WhatsApp refuses client version %s", inUse.Version)
	}
	ev := ClientOutdated{Message: "walink: " + msg}
	c.emit(ev)
	return false, ev
}

// clientExpiration handles <ib><client_expiration t=…/>: the event, and a
// refetch of the version before the deadline on the connection's timer
// (Config.Now's clock).
func (cn *conn) clientExpiration(at time.Time) {
	c := cn.c
	c.mu.Lock()
	c.ver.expiresAt = at
	c.mu.Unlock()
	c.emit(ClientExpiration{At: at})
	if c.pinned != (engine.Version{}) {
		return // a pinned version is the user's to change
	}
	cn.timers.set(timerVersionRefetch, engine.VersionRefetchAt(at, c.now()))
}

// armStaleRefetch arms the version fetch at once when the stored version
// is older than engine.VersionCacheTTL: the connection goes on with it
// (it worked a day ago) while a fresh one is fetched for the next dial,
// as WhatsApp Web refreshes its version in the background.
func (cn *conn) armStaleRefetch() {
	c := cn.c
	c.mu.Lock()
	stale := c.ver.inUse.RefetchInBackground
	c.mu.Unlock()
	if stale {
		cn.timers.set(timerVersionRefetch, c.now())
	}
}

// refetchForExpiry runs the fetch armed by clientExpiration (or by
// armStaleRefetch) off the driver; a newer version (or, for a stale one,
// the same version fetched anew) is kept for the next dial.
func (cn *conn) refetchForExpiry() {
	c := cn.c
	c.mu.Lock()
	inUse := c.ver.inUse.Version
	stale := c.ver.inUse.RefetchInBackground && c.ver.expiresAt.IsZero()
	c.mu.Unlock()
	// The fetch ends with the connection, so that serve (which joins it)
	// never waits out a slow fetch before the next dial; the next
	// client_expiration, or a 405, fetches again.
	ctx, cancel := context.WithCancel(cn.ctx)
	cn.wg.Add(2)
	go func() {
		defer cn.wg.Done()
		select {
		case <-cn.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer cn.wg.Done()
		defer cancel()
		v, err := c.fetchVersion(ctx)
		keep := engine.AfterExpiryFetch(inUse, v, err)
		if stale {
			keep = engine.AfterStaleFetch(inUse, v, err)
		}
		if !keep {
			if err != nil && !errors.Is(err, context.Canceled) {
				c.log.Warn("fetching the version ahead of its expiration", "err", err)
			}
			return
		}
		c.mu.Lock()
		c.ver.prefetched, c.ver.prefetchAt = v, c.now()
		c.mu.Unlock()
		if stale {
			c.log.Info("refreshed the stored WhatsApp Web version, older than a day", "version", v.String())
			return
		}
		c.log.Info("fetched the current WhatsApp Web version ahead of the expiration", "version", v.String())
	}()
}
