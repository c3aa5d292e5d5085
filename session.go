package walink

import (
	"context"
	"fmt"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/keys"
)

// minServerPreKeys is the server count under which pre-keys are uploaded.
const minServerPreKeys = 5

// handleSuccess starts the post-login bootstrap (pre-keys, active mode,
// Connected) as a task, which then arms the keepalive timer.
func (cn *conn) handleSuccess(n binxml.Node) {
	d := cn.c.device()
	if !d.Paired() {
		// whatsmeow ignores a stray <success> before pairing finishes
		// (CHANGES-2026.md §5); so do we.
		cn.log.Warn("ignoring success before pairing")
		return
	}
	s := engine.ParseSuccess(n)
	cn.goTask(func() {
		if err := cn.bootstrap(s); err != nil {
			if cn.ctx.Err() == nil {
				cn.log.Error("post-login setup failed", "err", err)
				cn.finish(endNetwork)
			}
			return
		}
		cn.startKeepalive()
	})
}

func (cn *conn) bootstrap(s engine.Success) error {
	c := cn.c
	d := c.device()
	if d == nil {
		return ErrNotLoggedIn
	}
	if (!s.LID.IsEmpty() && s.LID != d.LID) || d.Unconfirmed {
		// A successful login also confirms a session whose 515 was lost.
		nd := *d
		if !s.LID.IsEmpty() {
			nd.LID = s.LID
		}
		nd.Unconfirmed = false
		if err := c.st.PutDevice(cn.ctx, &nd); err != nil {
			return fmt.Errorf("walink: saving lid: %w", err)
		}
		c.setDevice(&nd)
		d = &nd
	}
	if err := cn.uploadPreKeys(); err != nil {
		return err
	}
	if _, err := cn.request(cn.ctx, engine.SetActive(c.ids.Next())); err != nil {
		return fmt.Errorf("walink: leaving passive mode: %w", err)
	}
	cn.mu.Lock()
	cn.connected, cn.everConn = true, true
	cn.mu.Unlock()
	c.notifyConnState()
	c.log.Info("connected", "jid", d.ID.String())
	c.emit(Connected{})
	return nil
}

// uploadPreKeys tops up the server's one-time pre-keys: the private halves
// are stored first, so an uploaded key can always be found again.
func (cn *conn) uploadPreKeys() error {
	c := cn.c
	dev := c.device()
	resp, err := cn.request(cn.ctx, engine.PreKeyCount(c.ids.Next()))
	if err != nil {
		return fmt.Errorf("walink: pre-key count: %w", err)
	}
	count, err := engine.ParsePreKeyCount(resp)
	if err != nil {
		return fmt.Errorf("walink: %w", err)
	}
	if count >= minServerPreKeys {
		return nil
	}
	next := max(dev.NextPreKeyID, 1)
	pks, err := keys.NewPreKeys(c.cfg.Rand, next, c.cfg.PreKeyCount)
	if err != nil {
		return fmt.Errorf("walink: making pre-keys: %w", err)
	}
	after := pks[len(pks)-1].ID + 1
	if after > keys.MaxPreKeyID {
		after = 1
	}
	if err := c.st.PutPreKeys(cn.ctx, dev.NoiseKey.Public, pks, after); err != nil {
		return fmt.Errorf("walink: saving pre-keys: %w", err)
	}
	nd := *dev
	nd.NextPreKeyID = after
	c.setDevice(&nd)
	if _, err := cn.request(cn.ctx, engine.PreKeyUpload(c.ids.Next(), dev.RegistrationID, dev.IdentityKey.Public, pks, dev.SignedPreKey)); err != nil {
		return fmt.Errorf("walink: uploading pre-keys: %w", err)
	}
	c.log.Info("uploaded pre-keys", "count", len(pks), "server_had", count)
	return nil
}

// startKeepalive arms the keepalive: it pings at a random interval in
// [KeepaliveMin, KeepaliveMax] and drops the connection when pings have
// failed for KeepaliveGiveUp. A timer rather than a goroutine: an idle
// connection then holds no stack for it; each ping runs on the fresh,
// short-lived goroutine the timer starts for its callback.
//
// An armed timer holds one count of cn.wg, so serve's Wait also joins a
// ping in flight: the count is released by serve when Stop cancels the
// timer, else by the callback it started.
func (cn *conn) startKeepalive() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.kaTimer != nil {
		return // a second <success>: one keepalive per connection
	}
	cn.kaLastOK = time.Now()
	cn.armKeepalive()
}

// armKeepalive schedules the next ping unless the connection has ended
// (serve stops the timer after cancelling ctx, so an arm it missed sees
// the ctx done). The caller holds cn.mu and a count of cn.wg, which makes
// the Add here safe against serve's Wait.
func (cn *conn) armKeepalive() {
	if cn.ctx.Err() != nil {
		return
	}
	c := cn.c
	span := c.cfg.KeepaliveMax - c.cfg.KeepaliveMin
	d := c.cfg.KeepaliveMin + time.Duration(c.randFloat()*float64(span))
	cn.wg.Add(1)
	if cn.kaTimer == nil {
		cn.kaTimer = time.AfterFunc(d, cn.keepaliveTick)
	} else {
		cn.kaTimer.Reset(d)
	}
}

// keepaliveTick is the timer's callback: one ping, then the next arm.
func (cn *conn) keepaliveTick() {
	defer cn.wg.Done()
	c := cn.c
	ctx, cancel := context.WithTimeout(cn.ctx, c.cfg.KeepaliveTimeout)
	_, err := cn.request(ctx, engine.Ping(c.ids.Next()))
	cancel()
	if err != nil {
		if cn.ctx.Err() != nil {
			return
		}
		cn.log.Warn("keepalive failed", "err", err)
	}
	cn.mu.Lock()
	if err == nil {
		cn.kaLastOK = time.Now()
	}
	giveUp := err != nil && time.Since(cn.kaLastOK) > c.cfg.KeepaliveGiveUp
	if !giveUp {
		cn.armKeepalive()
	}
	cn.mu.Unlock()
	if giveUp {
		cn.log.Warn("keepalive failing too long, reconnecting")
		cn.finish(endNetwork)
	}
}

// handleFailure handles a <failure> sent instead of <success>.
func (cn *conn) handleFailure(n binxml.Node) {
	c := cn.c
	f := engine.ParseFailure(n)
	reason := ConnectFailureReason(f.Reason)
	cn.log.Warn("login refused", "reason", reason.String(), "message", f.Message)
	switch {
	case reason.IsLoggedOut() && cn.dropUnconfirmed("failure "+reason.String()):
	case reason.IsLoggedOut():
		cn.finish(endLoggedOut)
		if !c.isLoggingOut() {
			c.clearSession(context.WithoutCancel(cn.ctx), c.device())
			c.emit(LoggedOut{OnConnect: true, Reason: reason})
		}
	case reason == ReasonTempBanned:
		cn.finish(endBanned)
		c.emit(TemporaryBan{Code: f.BanCode, Expire: f.BanExpire})
	case reason == ReasonClientOutdated:
		cn.finish(endOutdated)
		c.emit(ClientOutdated{Message: fmt.Sprintf(
			"walink: WhatsApp refused client version %s as outdated: set Config.Version to the current "+
				"WhatsApp Web revision (\"2.3000.\" + the client_revision in https://web.whatsapp.com/sw.js) "+
				"or upgrade walink", c.cfg.Version)})
	case f.Reason >= 500:
		cn.finish(endNetwork)
		c.emit(ConnectFailure{Reason: reason, Message: f.Message})
	default:
		cn.finish(endFatal)
		c.emit(ConnectFailure{Reason: reason, Message: f.Message})
	}
}

// handleStreamError handles <stream:error> (PROTOCOL.md §18).
func (cn *conn) handleStreamError(n binxml.Node) {
	c := cn.c
	se := engine.ParseStreamError(n)
	switch se.Kind {
	case engine.StreamRestart:
		cn.log.Debug("server asked for a restart (515)")
		cn.mu.Lock()
		paired := cn.paired
		cn.mu.Unlock()
		if paired {
			// The 515 after our pair-device-sign: the server linked us.
			c.confirmSession(context.WithoutCancel(cn.ctx), "515 after pairing")
		}
		cn.finish(endRestart)
	case engine.StreamDeviceRemoved:
		if cn.dropUnconfirmed("stream error device removed") {
			return
		}
		cn.log.Warn("device removed by the server", "code", se.Code, "text", se.Text)
		cn.finish(endLoggedOut)
		if !c.isLoggingOut() {
			c.clearSession(context.WithoutCancel(cn.ctx), c.device())
			c.emit(LoggedOut{OnConnect: false, Reason: ReasonLoggedOut})
		}
	case engine.StreamReplaced:
		cn.log.Warn("stream replaced by another connection")
		cn.finish(endReplaced)
		c.emit(StreamReplaced{})
	case engine.StreamRateLimited:
		cn.log.Warn("rate limited by the server", "code", se.Code)
		cn.finish(endRateLimited)
	default:
		cn.log.Info("stream error", "code", se.Code, "text", se.Text)
		cn.finish(endNetwork)
	}
}
