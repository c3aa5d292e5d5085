package walink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/transport"
)

// handlePairDevice acknowledges pair-device, keeps the refs and starts the
// QR rotation (PROTOCOL.md §11.1–11.3).
func (cn *conn) handlePairDevice(n binxml.Node) {
	c := cn.c
	cn.sendOrLog(engine.IQResult(n.Attr("id")))
	if c.device().Paired() {
		cn.log.Warn("ignoring pair-device for a paired device")
		return
	}
	refs, err := engine.ParsePairDevice(n)
	if err != nil {
		cn.log.Warn("bad pair-device", "err", err)
		return
	}
	cn.mu.Lock()
	if cn.paired || cn.ctx.Err() != nil {
		cn.mu.Unlock()
		return
	}
	if cn.qrTimer != nil {
		cn.qrTimer.Stop()
	}
	cn.qr = engine.NewQRRotation(refs, c.cfg.QRFirstTimeout, c.cfg.QRNextTimeout, c.now())
	cn.ready = true
	cn.renderQRLocked()
	cn.qrTimer = time.AfterFunc(c.cfg.QRFirstTimeout, cn.qrTick)
	cn.mu.Unlock()
	c.notifyConnState()
}

// renderQRLocked emits the current ref as a QR string built from the adv
// secret stored right now (it may have been rotated since pair-device).
func (cn *conn) renderQRLocked() {
	c := cn.c
	ref, remaining, ok := cn.qr.Current(c.now())
	if !ok {
		return
	}
	d := c.device()
	if d == nil {
		return
	}
	q := pairing.QR{Ref: ref, Noise: d.NoiseKey.Public, Identity: d.IdentityKey.Public, AdvSecret: d.AdvSecret, ClientType: c.cfg.PlatformType.clientTypeChar()}
	c.emit(PairingQRCode{Code: q.String(), Timeout: remaining})
}

// qrTick runs when the current ref expires: show the next one, or give up
// when all are spent (keeping the connection while a pair code is
// outstanding, CHANGES-2026.md §3).
func (cn *conn) qrTick() {
	c := cn.c
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.qr == nil || cn.paired || cn.ctx.Err() != nil {
		return
	}
	// The timer is authoritative; the injected clock may not have moved.
	cn.qr.Advance(maxTime(c.now(), cn.qr.Deadline()))
	if cn.qr.Exhausted() {
		cn.qr = nil
		c.emit(QRCodesExpired{})
		if cn.code.outstanding(c.now()) {
			cn.log.Info("QR refs expired; keeping the connection for the pair code")
			cn.qrSpent = true
			return
		}
		cn.log.Info("QR refs expired; disconnecting")
		cn.end = endQRExpired
		cn.cancel()
		return
	}
	cn.renderQRLocked()
	cn.qrTimer = time.AfterFunc(c.cfg.QRNextTimeout, cn.qrTick)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// handleRegRefresh rotates the adv secret when the server retires the one
// in the QR, persists it, and re-renders the current ref without touching
// its timer (CHANGES-2026.md §1).
func (cn *conn) handleRegRefresh() {
	c := cn.c
	d := c.device()
	cn.mu.Lock()
	skip := d.Paired() || cn.paired || (cn.code != nil && cn.code.Finishing)
	cn.mu.Unlock()
	if skip || d == nil {
		cn.log.Debug("ignoring companion_reg_refresh")
		return
	}
	nd := *d
	if _, err := io.ReadFull(c.cfg.Rand, nd.AdvSecret[:]); err != nil {
		cn.log.Error("rotating adv secret", "err", err)
		return
	}
	if err := c.st.PutDevice(cn.ctx, &nd); err != nil {
		cn.log.Error("saving rotated adv secret", "err", err)
		return
	}
	c.setDevice(&nd)
	cn.log.Info("adv secret rotated by companion_reg_refresh")
	cn.mu.Lock()
	if cn.qr != nil && !cn.paired {
		cn.renderQRLocked()
	}
	cn.mu.Unlock()
}

// handlePairSuccess verifies the phone's signed device identity, stores the
// session (Unconfirmed) in one PutDevice and answers pair-device-sign; on
// any failure it sends WhatsApp's error reply, emits PairError and stores
// nothing.
func (cn *conn) handlePairSuccess(n binxml.Node) {
	c := cn.c
	ps, err := engine.ParsePairSuccess(n)
	if err != nil {
		cn.refusePair(n.Attr("id"), ps, fmt.Errorf("walink: pair-success: %w", err), 500, "internal-error")
		return
	}
	cn.mu.Lock()
	if cn.paired {
		cn.mu.Unlock()
		cn.log.Warn("ignoring a second pair-success")
		return
	}
	var secrets [][32]byte
	if cn.code != nil && cn.code.haveSecret {
		secrets = append(secrets, cn.code.advSecret)
	}
	cn.mu.Unlock()
	d := c.device()
	if d == nil || d.Paired() {
		cn.refusePair(ps.IQID, ps, ErrAlreadyPaired, 500, "internal-error")
		return
	}
	secrets = append(secrets, d.AdvSecret)

	// Try the pair-code secret first (if stage 2 ran), then the QR's: QR
	// and code may both be live, and whichever the phone used wins.
	var v *pairing.Verified
	var used [32]byte
	for _, s := range secrets {
		v, err = pairing.VerifyPairSuccess(c.cfg.Rand, s, d.IdentityKey, ps.DeviceIdentity)
		if err == nil {
			used = s
			break
		}
		if !errors.Is(err, pairing.ErrHMACMismatch) {
			break
		}
	}
	if err != nil {
		code, text := pairing.ErrorReply(err)
		cn.refusePair(ps.IQID, ps, fmt.Errorf("walink: pair-success refused: %w", err), code, text)
		return
	}

	now := c.now()
	nd := *d
	nd.ID, nd.LID = ps.ID, ps.LID
	nd.Account = v.Account
	nd.PrimaryIdentity = v.AccountKey
	nd.BusinessName, nd.Platform = ps.BusinessName, ps.Platform
	nd.PushName = c.cfg.PushName
	nd.AdvSecret = used
	nd.LinkedAt = now
	// Stored before the reply goes out, marked unconfirmed: a crash after
	// the reply must not lose a link the server made, and one before it
	// must not leave a session the server never linked looking complete.
	// The 515 restart or the first login confirms it.
	nd.Unconfirmed = true
	if !ps.ServerTime.IsZero() {
		nd.ClockOffset = ps.ServerTime.Sub(now).Truncate(time.Second)
	}
	if c.cfg.ServerURL != transport.DefaultURL {
		nd.ServerURL = c.cfg.ServerURL
	}
	if !c.cfg.ServerRoot.IsZero() && !c.cfg.ServerRoot.Equal(noise.WhatsAppRootKey) {
		nd.ServerRoot = c.cfg.ServerRoot
	}
	if err := c.st.PutDevice(context.WithoutCancel(cn.ctx), &nd); err != nil {
		cn.refusePair(ps.IQID, ps, fmt.Errorf("walink: saving session: %w", err), 500, "internal-error")
		return
	}
	c.setDevice(&nd)

	cn.mu.Lock()
	cn.paired = true
	cn.ready = false
	if cn.qrTimer != nil {
		cn.qrTimer.Stop()
	}
	cn.qr = nil
	if cn.code != nil {
		cn.code.Done = true
	}
	if cn.codeTimer != nil {
		cn.codeTimer.Stop()
	}
	cn.mu.Unlock()

	cn.mu.Lock()
	if cn.ctx.Err() == nil {
		// A server that never sends the 515 must not hold an unconfirmed
		// session forever: restart and let a login decide.
		cn.confirm = time.AfterFunc(c.cfg.PairConfirmTimeout, func() {
			cn.log.Warn("no 515 after the pairing reply; restarting to log in", "waited", c.cfg.PairConfirmTimeout)
			cn.finish(endRestart)
		})
	}
	cn.mu.Unlock()
	cn.sendOrLog(engine.PairDeviceSign(ps.IQID, v.Identity.KeyIndex, v.Reply))
	cn.log.Info("paired", "jid", nd.ID.String(), "platform", nd.Platform)
	c.emit(PairSuccess{ID: ps.ID, LID: ps.LID, BusinessName: ps.BusinessName, Platform: ps.Platform})
	// The server now sends 515; the runner logs in with the new session.
}

func (cn *conn) refusePair(id string, ps engine.PairSuccess, err error, code int, text string) {
	cn.log.Warn("refusing pair-success", "code", code, "text", text, "err", err)
	cn.sendOrLog(engine.IQError(id, code, text))
	cn.c.emit(PairError{ID: ps.ID, LID: ps.LID, BusinessName: ps.BusinessName, Platform: ps.Platform, Err: err})
}

// confirmSession clears Device.Unconfirmed once the server has shown it
// linked the device (the 515 after our pair-device-sign, or a login). A
// failed write is only logged: the next login confirms again.
func (c *Client) confirmSession(ctx context.Context, why string) {
	d := c.device()
	if !d.Paired() || !d.Unconfirmed {
		return
	}
	nd := *d
	nd.Unconfirmed = false
	if err := c.st.PutDevice(ctx, &nd); err != nil {
		c.log.Error("confirming session", "by", why, "err", err)
		return
	}
	c.setDevice(&nd)
	c.log.Debug("session confirmed", "by", why)
}

// dropUnconfirmed handles a login refused for a session the server never
// confirmed: the pairing reply did not reach it (a crash or a drop between
// storing and replying). The record is deleted without a LoggedOut event,
// it never was a session, and the runner reconnects at once to pair anew.
// It reports false when the device is confirmed (a real logout).
func (cn *conn) dropUnconfirmed(why string) bool {
	c := cn.c
	d := c.device()
	if !d.Paired() || !d.Unconfirmed {
		return false
	}
	cn.log.Info("unconfirmed session refused by the server; pairing anew", "by", why)
	cn.finish(endRestart)
	c.clearSession(context.WithoutCancel(cn.ctx), d)
	return true
}
