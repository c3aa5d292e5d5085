package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store"
)

// SessionConfig is what a Session needs besides its device. Every duration
// must be set (package walink fills the defaults from its Config).
type SessionConfig struct {
	QRFirst, QRNext time.Duration // how long the first and each later QR ref is shown
	CodeLifetime    time.Duration // a pair code's window (PairCodeLifetime)
	CodeFinishWait  time.Duration // pair-success after an accepted companion_finish
	ConfirmWait     time.Duration // the 515 after pair-device-sign
	KeepaliveMin    time.Duration
	KeepaliveMax    time.Duration
	KeepaliveTimeout,
	KeepaliveGiveUp time.Duration
	IQTimeout     time.Duration // default wait for a reply to the session's IQs
	LogoutTimeout time.Duration
	PreKeyCount   int // uploaded when the server has fewer than MinServerPreKeys

	ClientType string // the QR's companion platform id (pairing.ClientType…)
	PushName   string
	// ServerURL and ServerRoot are stored with a device paired here
	// ("" and zero: WhatsApp's own, not stored).
	ServerURL  string
	ServerRoot keys.PublicKey
	// RememberServer: the driver was told which server to use (not the
	// device's remembered one), so a login saves ServerURL and ServerRoot
	// with the device when they differ.
	RememberServer bool

	Rand io.Reader // keys, adv secrets, keepalive jitter; used only inside Step and tasks
	IDs  *IDs
}

// MinServerPreKeys is the server's pre-key count under which the session
// uploads a new batch.
const MinServerPreKeys = 5

// Session is the protocol state of one connection, stepped by a driver:
// Step takes one Input stamped with the driver's clock and returns the
// Actions to carry out, in order. It does no IO, reads no clock, starts no
// goroutine and takes no lock; see the package doc for the contract.
type Session struct {
	cfg SessionConfig
	dev *store.Device // the device as last saved; replaced, never mutated

	end     EndReason
	pending map[string]pendingIQ
	timers  []armedTimer // armed, as the driver was told; in timerBuf unless more
	// timerBuf holds the armed timers while they are few (always, in
	// practice): no allocation of their own.
	timerBuf [2]armedTimer
	taskSeq  uint64

	// Registration (an unpaired device).
	ready     bool // pair-device received: codes may be asked for
	paired    bool // a pair-success was accepted (and saved) here
	pairing   *pairSave
	qr        *QRRotation
	qrSpent   bool // every ref expired while a pair code kept the connection
	code      *codeState
	pairModes []PairingMode

	// Login (a paired device).
	loggedIn      bool // <success> seen
	connected     bool // bootstrapped: Connected emitted
	kaLastOK      time.Time
	loggingOut    bool
	pendingUpload *preKeyUpload
}

// NewSession starts the state of a connection whose handshake sent dev's
// payload (registration for an unpaired dev, login for a paired one).
func NewSession(cfg SessionConfig, dev *store.Device) *Session {
	s := &Session{}
	s.Init(cfg, dev)
	return s
}

// Init is NewSession for a Session kept inside a driver's own struct (one
// allocation for both): it starts the state afresh. A Session must not be
// copied once stepped.
func (s *Session) Init(cfg SessionConfig, dev *store.Device) {
	*s = Session{cfg: cfg, dev: dev}
}

// armedTimer is one armed timer. A session has a handful at most (one, the
// keepalive, while idle), so they are a slice: a map would keep a header
// and a group of eight slots (~0.3 KiB) in every idle session.
type armedTimer struct {
	kind TimerKind
	at   time.Time
}

// timer returns when the timer of kind k is armed for.
func (s *Session) timer(k TimerKind) (time.Time, bool) {
	for _, t := range s.timers {
		if t.kind == k {
			return t.at, true
		}
	}
	return time.Time{}, false
}

// disarm forgets the timer of kind k; it reports whether one was armed.
func (s *Session) disarm(k TimerKind) bool {
	for i, t := range s.timers {
		if t.kind == k {
			s.timers = slices.Delete(s.timers, i, i+1)
			if len(s.timers) <= len(s.timerBuf) && cap(s.timers) > len(s.timerBuf) {
				// Back from a spill: let the heap copy go.
				s.timers = s.timerBuf[:copy(s.timerBuf[:], s.timers)]
			}
			return true
		}
	}
	return false
}

// AddPairingMode plugs a pairing mode into the session (see PairingMode);
// call it before the first Step.
func (s *Session) AddPairingMode(m PairingMode) { s.pairModes = append(s.pairModes, m) }

// Device is the device as the session last saved it.
func (s *Session) Device() *store.Device { return s.dev }

// Ready reports whether the server offered pairing (pair-device) and the
// session has not paired yet: a pair code may be asked for.
func (s *Session) Ready() bool { return s.ready && !s.paired && s.end == EndNone }

// Paired reports whether a pair-success was accepted on this connection.
func (s *Session) Paired() bool { return s.paired }

// Connected reports whether the session is logged in and bootstrapped.
func (s *Session) Connected() bool { return s.connected && s.end == EndNone }

// Ended returns why the session ended (EndNone while it runs).
func (s *Session) Ended() EndReason { return s.end }

// Step feeds one input at now and returns what to do. After an End action
// only Saved inputs are still meaningful; others return nothing.
func (s *Session) Step(now time.Time, in Input) []Action {
	var out actions
	if s.end != EndNone {
		if sv, ok := in.(Saved); ok {
			s.saved(&out, now, sv)
		}
		return out.list
	}
	switch in := in.(type) {
	case NodeIn:
		s.node(&out, now, in.Node)
	case TimerFired:
		s.timerFired(&out, now, in.Kind)
	case TaskDone:
		s.taskDone(&out, now, in)
	case Saved:
		s.saved(&out, now, in)
	case PairCodeCall:
		s.pairCodeCall(&out, now, in)
	case CancelPairCode:
		s.cancelPairCode(&out, in)
	case LogoutCall:
		s.logoutCall(&out, now, in)
	case PairingModeInput:
		for _, m := range s.pairModes {
			if m.Name() == in.Mode {
				m.Input(s.hooks(&out, now), in.Value)
			}
		}
	}
	return out.list
}

// actions collects a step's output.
type actions struct{ list []Action }

func (a *actions) add(x Action)       { a.list = append(a.list, x) }
func (a *actions) send(n binxml.Node) { a.add(Send{Node: n}) }
func (a *actions) emit(e Event)       { a.add(Emit{Event: e}) }
func (a *actions) log(level LogLevel, msg string, args ...any) {
	a.add(Log{Level: level, Msg: msg, Args: args})
}

func (s *Session) finish(out *actions, r EndReason) {
	if s.end != EndNone {
		return
	}
	s.end = r
	for _, t := range s.timers {
		out.add(CancelTimer{Kind: t.kind})
	}
	s.timers = nil
	out.add(End{Reason: r})
}

func (s *Session) arm(out *actions, k TimerKind, at time.Time) {
	i := slices.IndexFunc(s.timers, func(t armedTimer) bool { return t.kind == k })
	if i < 0 {
		if s.timers == nil {
			s.timers = s.timerBuf[:0]
		}
		s.timers = append(s.timers, armedTimer{kind: k, at: at})
	} else {
		s.timers[i].at = at
	}
	out.add(ArmTimer{Kind: k, At: at})
}

func (s *Session) cancel(out *actions, k TimerKind) {
	if s.disarm(k) {
		out.add(CancelTimer{Kind: k})
	}
}

// request sends an IQ and remembers what its answer is for. The IQ timer
// is armed for the earliest deadline of all outstanding requests.
func (s *Session) request(out *actions, now time.Time, n binxml.Node, p pendingIQ, wait time.Duration) {
	if wait <= 0 {
		wait = s.cfg.IQTimeout
	}
	p.deadline = now.Add(wait)
	if s.pending == nil {
		s.pending = map[string]pendingIQ{}
	}
	s.pending[n.Attr("id")] = p
	out.send(n)
	s.armIQ(out)
}

func (s *Session) armIQ(out *actions) {
	var first time.Time
	for _, p := range s.pending {
		if first.IsZero() || p.deadline.Before(first) {
			first = p.deadline
		}
	}
	if first.IsZero() {
		// Maps do not shrink: an idle session (between keepalives) keeps
		// no group of eight ~100-byte slots.
		s.pending = nil
		s.cancel(out, TimerIQ)
		return
	}
	if at, ok := s.timer(TimerIQ); !ok || !at.Equal(first) {
		s.arm(out, TimerIQ, first)
	}
}

func (s *Session) newTask(out *actions, kind TaskKind, run func() (any, error)) uint64 {
	s.taskSeq++
	out.add(StartTask{Kind: kind, ID: s.taskSeq, Run: run})
	return s.taskSeq
}

// randFloat is a uniform number in [0,1) from cfg.Rand (0 if it fails:
// jitter is not worth an error).
func (s *Session) randFloat() float64 {
	var b [8]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return 0
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}

// --- incoming stanzas ---

func (s *Session) node(out *actions, now time.Time, n binxml.Node) {
	switch n.Tag {
	case "iq":
		s.iq(out, now, n)
	case "notification":
		out.send(Ack(n))
		switch n.Attr("type") {
		case "companion_reg_refresh":
			if IsRegRefresh(n) {
				s.regRefresh(out)
			}
		case "link_code_companion_reg":
			s.linkCode(out, now, n)
		default:
			for _, m := range s.pairModes {
				if m.Node(s.hooks(out, now), n) {
					return
				}
			}
		}
	case "success":
		s.success(out, now, n)
	case "failure":
		s.failure(out, n)
	case "stream:error":
		s.streamError(out, n)
	case "xmlstreamend":
		s.finish(out, EndNetwork)
	default:
		// ib, ack, receipt, …: nothing a linking client must act on.
	}
}

func (s *Session) iq(out *actions, now time.Time, n binxml.Node) {
	switch n.Attr("type") {
	case "result", "error":
		id := n.Attr("id")
		p, ok := s.pending[id]
		if !ok {
			out.log(LevelDebug, "response to no request", "id", id)
			return
		}
		delete(s.pending, id)
		s.armIQ(out)
		var err error
		if e, isErr := ParseIQError(n); isErr {
			err = &e
		}
		s.answer(out, now, p, n, err)
		return
	}
	if IsServerPing(n) {
		out.send(Pong(n))
		return
	}
	if !IsFromServer(n) {
		out.log(LevelWarn, "ignoring iq not from the server", "id", n.Attr("id"))
		return
	}
	switch {
	case hasChild(n, "pair-device"):
		s.pairDevice(out, now, n)
	case hasChild(n, "pair-success"):
		s.pairSuccess(out, now, n)
	default:
		for _, m := range s.pairModes {
			if m.Node(s.hooks(out, now), n) {
				return
			}
		}
		out.log(LevelDebug, "ignoring server iq", "xmlns", n.Attr("xmlns"))
	}
}

func hasChild(n binxml.Node, tag string) bool { _, ok := n.Child(tag); return ok }

// --- timers ---

func (s *Session) timerFired(out *actions, now time.Time, k TimerKind) {
	at, ok := s.timer(k)
	if !ok {
		return // cancelled after the driver's timer fired
	}
	s.disarm(k)
	// The firing is authoritative: a clock that lags the timer (a frozen
	// test clock) must not postpone what the timer decided.
	if now.Before(at) {
		now = at
	}
	switch k {
	case TimerQR:
		s.qrTick(out, now)
	case TimerCode:
		s.codeTimer(out, now)
	case TimerConfirm:
		out.log(LevelWarn, "no 515 after the pairing reply; restarting to log in", "waited", s.cfg.ConfirmWait)
		s.finish(out, EndRestart)
	case TimerKeepalive:
		s.request(out, now, Ping(s.cfg.IDs.Next()), pendingIQ{kind: iqPing}, s.cfg.KeepaliveTimeout)
	case TimerIQ:
		for id, p := range s.pending {
			if !now.Before(p.deadline) {
				delete(s.pending, id)
				s.answer(out, now, p, binxml.Node{}, ErrTimeout)
			}
		}
		s.armIQ(out)
	default:
		for _, m := range s.pairModes {
			m.Timer(s.hooks(out, now), k)
		}
	}
}

// --- task results and saves ---

func (s *Session) taskDone(out *actions, now time.Time, in TaskDone) {
	switch in.Kind {
	case TaskPrepareCode:
		s.codePrepared(out, now, in)
	case TaskFinishCode:
		s.codeFinished(out, now, in)
	default:
		for _, m := range s.pairModes {
			m.TaskDone(s.hooks(out, now), in)
		}
	}
}

func (s *Session) saved(out *actions, now time.Time, in Saved) {
	if in.Err != nil {
		switch in.Tag {
		case SavePaired:
			p := s.pairing
			s.pairing = nil
			if p != nil {
				s.refusePair(out, p.ps, fmt.Errorf("%w: %w", ErrSaving, in.Err), 500, "internal-error")
			}
		case SaveLogin, SavePreKeyBatch:
			out.log(LevelError, "post-login setup failed", "err", in.Err)
			s.finish(out, EndNetwork)
		default:
			out.log(LevelError, "saving the device", "tag", in.Tag.String(), "err", in.Err)
		}
		return
	}
	if in.Device != nil {
		s.dev = in.Device
	}
	if s.end != EndNone {
		return
	}
	switch in.Tag {
	case SaveAdvSecret:
		out.log(LevelInfo, "adv secret rotated by companion_reg_refresh")
		if s.qr != nil && !s.paired {
			s.renderQR(out, now)
		}
	case SavePaired:
		s.pairSaved(out, now)
	case SaveLogin:
		s.request(out, now, PreKeyCount(s.cfg.IDs.Next()), pendingIQ{kind: iqPreKeyCount}, 0)
	case SavePreKeyBatch:
		p := s.pendingUpload
		s.pendingUpload = nil
		s.request(out, now, PreKeyUpload(s.cfg.IDs.Next(), s.dev.RegistrationID, s.dev.IdentityKey.Public, p.pks, s.dev.SignedPreKey),
			pendingIQ{kind: iqPreKeyUpload, count: len(p.pks), had: p.had}, 0)
	}
}

// answer handles the reply (or timeout, err == ErrTimeout) to one of the
// session's requests.
func (s *Session) answer(out *actions, now time.Time, p pendingIQ, resp binxml.Node, err error) {
	switch p.kind {
	case iqHello:
		s.helloAnswered(out, now, p, resp, err)
	case iqFinish:
		s.finishAnswered(out, now, p, err)
	case iqPreKeyCount:
		if err != nil {
			s.bootstrapFailed(out, fmt.Errorf("pre-key count: %w", err))
			return
		}
		count, perr := ParsePreKeyCount(resp)
		if perr != nil {
			s.bootstrapFailed(out, perr)
			return
		}
		if count >= MinServerPreKeys {
			s.request(out, now, SetActive(s.cfg.IDs.Next()), pendingIQ{kind: iqActive}, 0)
			return
		}
		s.topUpPreKeys(out, count)
	case iqPreKeyUpload:
		if err != nil {
			s.bootstrapFailed(out, fmt.Errorf("uploading pre-keys: %w", err))
			return
		}
		out.log(LevelInfo, "uploaded pre-keys", "count", p.count, "server_had", p.had)
		s.request(out, now, SetActive(s.cfg.IDs.Next()), pendingIQ{kind: iqActive}, 0)
	case iqActive:
		if err != nil {
			s.bootstrapFailed(out, fmt.Errorf("leaving passive mode: %w", err))
			return
		}
		s.connected = true
		out.log(LevelInfo, "connected", "jid", s.dev.ID.String())
		out.emit(Connected{})
		s.kaLastOK = now
		s.armKeepalive(out, now)
	case iqPing:
		if err == nil {
			s.kaLastOK = now
		} else {
			out.log(LevelWarn, "keepalive failed", "err", err)
			if now.Sub(s.kaLastOK) > s.cfg.KeepaliveGiveUp {
				out.log(LevelWarn, "keepalive failing too long, reconnecting")
				s.finish(out, EndNetwork)
				return
			}
		}
		s.armKeepalive(out, now)
	case iqLogout:
		s.loggingOut = false
		if err != nil {
			out.add(Reply{Call: p.call, Err: err})
			return
		}
		s.loggingOut = true // until the end: a late unlink notice is ours
		out.add(DeleteDevice{Device: s.dev})
		s.finish(out, EndLoggedOut)
		out.add(Reply{Call: p.call})
	case iqMode:
		for _, m := range s.pairModes {
			if m.Name() == p.mode {
				m.Answer(s.hooks(out, now), p.id, resp, err)
			}
		}
	}
}

// --- QR pairing (PROTOCOL.md §11, CHANGES-2026.md §1–§3) ---

// pairDevice acknowledges pair-device, keeps the refs and starts the QR
// rotation.
func (s *Session) pairDevice(out *actions, now time.Time, n binxml.Node) {
	out.send(IQResult(n.Attr("id")))
	if s.dev.Paired() {
		out.log(LevelWarn, "ignoring pair-device for a paired device")
		return
	}
	refs, err := ParsePairDevice(n)
	if err != nil {
		out.log(LevelWarn, "bad pair-device", "err", err)
		return
	}
	if s.paired || s.pairing != nil {
		return
	}
	s.qr = NewQRRotation(refs, s.cfg.QRFirst, s.cfg.QRNext, now)
	s.ready = true
	s.renderQR(out, now)
	s.arm(out, TimerQR, s.qr.Deadline())
}

// renderQR emits the current ref as a QR string built from the adv secret
// the device holds now (a reg refresh may have rotated it).
func (s *Session) renderQR(out *actions, now time.Time) {
	ref, remaining, ok := s.qr.Current(now)
	if !ok {
		return
	}
	d := s.dev
	q := pairing.QR{Ref: ref, Noise: d.NoiseKey.Public, Identity: d.IdentityKey.Public, AdvSecret: d.AdvSecret, ClientType: s.cfg.ClientType}
	out.emit(PairingQR{Code: q.String(), Timeout: remaining})
}

// qrTick: the current ref expired. Show the next one, or give up when all
// are spent, keeping the connection while a pair code is outstanding
// (CHANGES-2026.md §3).
func (s *Session) qrTick(out *actions, now time.Time) {
	if s.qr == nil || s.paired {
		return
	}
	if s.modeHolding() {
		// The QR's secret is retired and the user is in a mode's ceremony
		// (a passkey step): no new QR, no QRCodesExpired disconnect.
		out.log(LevelDebug, "QR rotation paused by a pairing mode")
		return
	}
	s.qr.Advance(maxTime(now, s.qr.Deadline()))
	if !s.qr.Exhausted() {
		s.renderQR(out, now)
		s.arm(out, TimerQR, s.qr.Deadline())
		return
	}
	s.qr = nil
	out.emit(QRCodesExpired{})
	if s.code.outstanding(now) || s.modeOutstanding(now) {
		out.log(LevelInfo, "QR refs expired; keeping the connection for the pair code")
		s.qrSpent = true
		return
	}
	out.log(LevelInfo, "QR refs expired; disconnecting")
	s.finish(out, EndQRExpired)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// regRefresh rotates the adv secret when the server retires the one in the
// QR; the current ref is re-rendered once the new secret is saved, without
// touching its timer (CHANGES-2026.md §1).
func (s *Session) regRefresh(out *actions) {
	if s.dev.Paired() || s.paired || s.pairing != nil || (s.code != nil && s.code.Finishing) || s.modeHolding() {
		out.log(LevelDebug, "ignoring companion_reg_refresh")
		return
	}
	nd := *s.dev
	if _, err := io.ReadFull(s.cfg.Rand, nd.AdvSecret[:]); err != nil {
		out.log(LevelError, "rotating adv secret", "err", err)
		return
	}
	out.add(SaveDevice{Tag: SaveAdvSecret, Device: &nd})
}

// heldSecrets returns the secrets of the modes that hold the pairing: a
// mode that retired every other secret (a passkey step, PASSKEY.md §4.7)
// is then the only one whose secret may verify a pair-success.
func (s *Session) heldSecrets() [][32]byte {
	var secrets [][32]byte
	for _, m := range s.pairModes {
		if hm, ok := m.(HoldingMode); ok && hm.Holding() {
			if sec, ok := m.AdvSecret(); ok {
				secrets = append(secrets, sec)
			}
		}
	}
	return secrets
}

// pairSave is a verified pair-success waiting for its SaveDevice.
type pairSave struct {
	ps    PairSuccess
	reply []byte
	index uint32
}

// pairSuccess verifies the phone's signed device identity and saves the
// session (Unconfirmed) before anything is answered; the reply goes out
// once the save succeeded (pairSaved). On any failure it sends WhatsApp's
// error reply, emits PairError and saves nothing.
func (s *Session) pairSuccess(out *actions, now time.Time, n binxml.Node) {
	ps, err := ParsePairSuccess(n)
	if err != nil {
		s.refusePair(out, ps, fmt.Errorf("pair-success: %w", err), 500, "internal-error")
		return
	}
	if s.paired || s.pairing != nil {
		out.log(LevelWarn, "ignoring a second pair-success")
		return
	}
	d := s.dev
	if d.Paired() {
		s.refusePair(out, ps, ErrAlreadyPaired, 500, "internal-error")
		return
	}
	// Try the secrets of the live pairing modes first (a pair code whose
	// stage 2 ran), then the QR's: both may be live, whichever the phone
	// used wins.
	secrets := s.heldSecrets()
	if len(secrets) == 0 {
		if s.code != nil && s.code.haveSecret {
			secrets = append(secrets, s.code.advSecret)
		}
		for _, m := range s.pairModes {
			if sec, ok := m.AdvSecret(); ok {
				secrets = append(secrets, sec)
			}
		}
		secrets = append(secrets, d.AdvSecret)
	}
	var v *pairing.Verified
	var used [32]byte
	for _, sec := range secrets {
		v, err = pairing.VerifyPairSuccess(s.cfg.Rand, sec, d.IdentityKey, ps.DeviceIdentity)
		if err == nil {
			used = sec
			break
		}
		if !errors.Is(err, pairing.ErrHMACMismatch) {
			break
		}
	}
	if err != nil {
		code, text := pairing.ErrorReply(err)
		s.refusePair(out, ps, fmt.Errorf("pair-success refused: %w", err), code, text)
		return
	}
	nd := *d
	nd.ID, nd.LID = ps.ID, ps.LID
	nd.Account = v.Account
	nd.PrimaryIdentity = v.AccountKey
	nd.BusinessName, nd.Platform = ps.BusinessName, ps.Platform
	nd.PushName = s.cfg.PushName
	nd.AdvSecret = used
	nd.LinkedAt = now
	// Saved before the reply goes out, marked unconfirmed: a crash after
	// the reply must not lose a link the server made, and one before it
	// must not leave a session the server never linked looking complete.
	// The 515 restart or the first login confirms it.
	nd.Unconfirmed = true
	if !ps.ServerTime.IsZero() {
		nd.ClockOffset = ps.ServerTime.Sub(now).Truncate(time.Second)
	}
	nd.ServerURL, nd.ServerRoot = s.cfg.ServerURL, s.cfg.ServerRoot
	s.pairing = &pairSave{ps: ps, reply: v.Reply, index: v.Identity.KeyIndex}
	out.add(SaveDevice{Tag: SavePaired, Device: &nd})
}

// pairSaved runs once the paired device is stored: stop QR and codes,
// answer pair-device-sign and wait for the 515.
func (s *Session) pairSaved(out *actions, now time.Time) {
	p := s.pairing
	s.pairing = nil
	if p == nil {
		return
	}
	s.paired, s.ready = true, false
	s.qr = nil
	s.cancel(out, TimerQR)
	if c := s.code; c != nil {
		c.Done = true
		s.code = nil
		if c.call != 0 {
			out.add(Reply{Call: c.call, Err: ErrAlreadyPaired})
		}
	}
	s.cancel(out, TimerCode)
	for _, m := range s.pairModes {
		m.Paired(s.hooks(out, now))
	}
	// A server that never sends the 515 must not hold an unconfirmed
	// session forever: restart and let a login decide.
	s.arm(out, TimerConfirm, now.Add(s.cfg.ConfirmWait))
	out.send(PairDeviceSign(p.ps.IQID, p.index, p.reply))
	out.log(LevelInfo, "paired", "jid", s.dev.ID.String(), "platform", s.dev.Platform)
	out.emit(Paired{ID: p.ps.ID, LID: p.ps.LID, BusinessName: p.ps.BusinessName, Platform: p.ps.Platform})
}

func (s *Session) refusePair(out *actions, ps PairSuccess, err error, code int, text string) {
	out.log(LevelWarn, "refusing pair-success", "code", code, "text", text, "err", err)
	out.send(IQError(ps.IQID, code, text))
	out.emit(PairError{ID: ps.ID, LID: ps.LID, BusinessName: ps.BusinessName, Platform: ps.Platform, Err: err})
}

// --- login (PROTOCOL.md §13, §17) ---

// success starts the post-login bootstrap: confirm the session and save a
// new LID, top up pre-keys, leave passive mode, then Connected and the
// keepalive.
func (s *Session) success(out *actions, now time.Time, n binxml.Node) {
	if !s.dev.Paired() {
		// whatsmeow ignores a stray <success> before pairing finishes
		// (CHANGES-2026.md §5); so do we.
		out.log(LevelWarn, "ignoring success before pairing")
		return
	}
	if s.loggedIn {
		out.log(LevelWarn, "ignoring a second success")
		return
	}
	s.loggedIn = true
	sc := ParseSuccess(n)
	moved := s.cfg.RememberServer && (s.dev.ServerURL != s.cfg.ServerURL || !s.dev.ServerRoot.Equal(s.cfg.ServerRoot))
	if (!sc.LID.IsEmpty() && sc.LID != s.dev.LID) || s.dev.Unconfirmed || moved {
		// A successful login also confirms a session whose 515 was lost.
		nd := *s.dev
		if !sc.LID.IsEmpty() {
			nd.LID = sc.LID
		}
		nd.Unconfirmed = false
		if moved {
			nd.ServerURL, nd.ServerRoot = s.cfg.ServerURL, s.cfg.ServerRoot
		}
		out.add(SaveDevice{Tag: SaveLogin, Device: &nd})
		return
	}
	s.request(out, now, PreKeyCount(s.cfg.IDs.Next()), pendingIQ{kind: iqPreKeyCount}, 0)
}

// topUpPreKeys makes a batch of pre-keys and saves their private halves
// before the upload, so an uploaded key can always be found again.
func (s *Session) topUpPreKeys(out *actions, had int) {
	next := max(s.dev.NextPreKeyID, 1)
	pks, err := keys.NewPreKeys(s.cfg.Rand, next, s.cfg.PreKeyCount)
	if err != nil {
		s.bootstrapFailed(out, fmt.Errorf("making pre-keys: %w", err))
		return
	}
	after := pks[len(pks)-1].ID + 1
	if after > keys.MaxPreKeyID {
		after = 1
	}
	nd := *s.dev
	nd.NextPreKeyID = after
	s.pendingUpload = &preKeyUpload{pks: pks, had: had}
	out.add(SavePreKeys{Device: &nd, PreKeys: pks, Next: after})
}

func (s *Session) bootstrapFailed(out *actions, err error) {
	out.log(LevelError, "post-login setup failed", "err", err)
	s.finish(out, EndNetwork)
}

// armKeepalive schedules the next ping at a random interval in
// [KeepaliveMin, KeepaliveMax] (WhatsApp Web's).
func (s *Session) armKeepalive(out *actions, now time.Time) {
	span := s.cfg.KeepaliveMax - s.cfg.KeepaliveMin
	d := s.cfg.KeepaliveMin + time.Duration(s.randFloat()*float64(span))
	s.arm(out, TimerKeepalive, now.Add(d))
}

// failure handles a <failure> sent instead of <success>.
func (s *Session) failure(out *actions, n binxml.Node) {
	f := ParseFailure(n)
	out.log(LevelWarn, "login refused", "reason", f.Reason, "message", f.Message)
	switch {
	case f.LoggedOut() && s.dropUnconfirmed(out, "failure"):
	case f.LoggedOut():
		s.finish(out, EndLoggedOut)
		if !s.loggingOut {
			out.add(DeleteDevice{Device: s.dev})
			out.emit(LoggedOut{OnConnect: true, Reason: f.Reason})
		}
	case f.Reason == 402:
		s.finish(out, EndBanned)
		out.emit(TemporaryBan{Code: f.BanCode, Expire: f.BanExpire})
	case f.Reason == 405:
		s.finish(out, EndOutdated)
		out.emit(ClientOutdated{})
	case f.Reason >= 500:
		s.finish(out, EndNetwork)
		out.emit(ConnectFailure{Reason: f.Reason, Message: f.Message})
	default:
		s.finish(out, EndFatal)
		out.emit(ConnectFailure{Reason: f.Reason, Message: f.Message})
	}
}

// streamError handles <stream:error> (PROTOCOL.md §18).
func (s *Session) streamError(out *actions, n binxml.Node) {
	se := ParseStreamError(n)
	switch se.Kind {
	case StreamRestart:
		out.log(LevelDebug, "server asked for a restart (515)")
		if s.paired && s.dev.Unconfirmed {
			// The 515 after our pair-device-sign: the server linked us.
			nd := *s.dev
			nd.Unconfirmed = false
			out.add(SaveDevice{Tag: SaveConfirm, Device: &nd})
		}
		s.finish(out, EndRestart)
	case StreamDeviceRemoved:
		if s.dropUnconfirmed(out, "stream error device removed") {
			return
		}
		out.log(LevelWarn, "device removed by the server", "code", se.Code, "text", se.Text)
		s.finish(out, EndLoggedOut)
		if !s.loggingOut {
			out.add(DeleteDevice{Device: s.dev})
			out.emit(LoggedOut{OnConnect: false, Reason: 401})
		}
	case StreamReplaced:
		out.log(LevelWarn, "stream replaced by another connection")
		s.finish(out, EndReplaced)
		out.emit(Replaced{})
	case StreamRateLimited:
		out.log(LevelWarn, "rate limited by the server", "code", se.Code)
		s.finish(out, EndRateLimited)
	default:
		out.log(LevelInfo, "stream error", "code", se.Code, "text", se.Text)
		s.finish(out, EndNetwork)
	}
}

// dropUnconfirmed handles a login refused for a session the server never
// confirmed: the pairing reply did not reach it. The record is deleted
// without a LoggedOut event (it never was a session) and the connection
// restarts at once to pair anew. It reports false for a confirmed device.
func (s *Session) dropUnconfirmed(out *actions, why string) bool {
	if !s.dev.Paired() || !s.dev.Unconfirmed {
		return false
	}
	out.log(LevelInfo, "unconfirmed session refused by the server; pairing anew", "by", why)
	s.finish(out, EndRestart)
	out.add(DeleteDevice{Device: s.dev})
	return true
}

// logoutCall sends remove-companion-device; the answer deletes the device
// and ends the connection.
func (s *Session) logoutCall(out *actions, now time.Time, in LogoutCall) {
	switch {
	case !s.connected:
		out.add(Reply{Call: in.Call, Err: ErrNotConnected})
	case s.loggingOut:
		out.add(Reply{Call: in.Call, Err: ErrLogoutInProgress})
	default:
		s.loggingOut = true
		s.request(out, now, RemoveCompanionDevice(s.cfg.IDs.Next(), s.dev.ID), pendingIQ{kind: iqLogout, call: in.Call}, s.cfg.LogoutTimeout)
	}
}

// ErrTimeout is the answer to a request whose reply did not come in time.
var ErrTimeout = errors.New("engine: no reply in time")

// Errors a Session replies to calls with.
var (
	ErrAlreadyPaired     = errors.New("engine: device is already paired")
	ErrNotReady          = errors.New("engine: the server has not offered pairing yet")
	ErrCodeOutstanding   = errors.New("engine: a pair code is already outstanding")
	ErrModeHolding       = errors.New("engine: a pairing step (passkey) is in progress")
	ErrCodeCancelled     = errors.New("engine: pair code cancelled")
	ErrMissingPairingRef = errors.New("engine: companion_hello reply has no pairing ref")
	ErrNotConnected      = errors.New("engine: not connected")
	ErrLogoutInProgress  = errors.New("engine: logout in progress")
	ErrSaving            = errors.New("engine: saving the session")
)
