package engine

import (
	"io"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/pairing/passkey"
)

// PasskeyModeName routes PairingModeInput to the passkey mode.
const PasskeyModeName = "passkey"

// Timer and task kinds of the passkey mode.
const (
	TimerPasskey    TimerKind = TimerModeFirst + 16 // the Flow's Deadline
	TaskPasskeyAuth TaskKind  = TaskModeFirst + 16  // the configured authenticator
)

// PasskeyModeConfig configures a PasskeyMode.
type PasskeyModeConfig struct {
	Rand       io.Reader // required: the Flow's randomness
	IDs        *IDs      // required: the session's id counter
	DeviceType int32     // DeviceProps.PlatformType of the registration
	// Authenticate, when set, answers each request by itself: it runs as
	// a task (off the driver) and its assertion is sent as if the
	// application had called SendPasskeyResponse. It must return by
	// deadline.
	Authenticate func(o passkey.RequestOptions, deadline time.Time) (passkey.Assertion, error)
	// AutoConfirm: see passkey.FlowConfig.
	AutoConfirm bool
	// Flow overrides the Flow's timeouts (tests); Rand, NewID, Noise,
	// Identity and DeviceType are always set from the fields above.
	Flow passkey.FlowConfig
}

// PasskeyRespond is the mode input of SendPasskeyResponse.
type PasskeyRespond struct {
	Call      CallID
	Assertion passkey.Assertion
}

// PasskeyConfirm is the mode input of ConfirmPasskey.
type PasskeyConfirm struct{ Call CallID }

// PasskeyEvent is the Value of the mode's ModeEvents: a passkey.Event
// (RequestEvent, ConfirmationEvent or ErrorEvent).
type PasskeyEvent struct{ Event passkey.Event }

// PasskeyMode plugs the passkey ("Shortcake") step into a Session
// (pairing/passkey's Flow; PASSKEY.md). It is a HoldingMode: from the
// first passkey_prologue_request until the step ends, the QR rotation
// pauses, reg refreshes are ignored, no pair code starts and pair-success
// verifies with the Flow's new adv secret only. Nothing of the step is
// stored; the session stores that secret with the paired device.
type PasskeyMode struct {
	cfg   PasskeyModeConfig
	flow  *passkey.Flow
	err   error // NewFlow's
	calls map[passkey.Call]CallID
	auth  uint64 // the authenticator task in flight
	held  bool   // a request drew a new adv secret and the step has not ended
	done  bool   // paired
}

// NewPasskeyMode returns a mode for one connection.
func NewPasskeyMode(cfg PasskeyModeConfig) *PasskeyMode {
	return &PasskeyMode{cfg: cfg, calls: map[passkey.Call]CallID{}}
}

// Name implements PairingMode.
func (m *PasskeyMode) Name() string { return PasskeyModeName }

// ensure makes the Flow from the session's device on first use.
func (m *PasskeyMode) ensure(h ModeHooks) *passkey.Flow {
	if m.flow != nil || m.err != nil {
		return m.flow
	}
	d := h.Device()
	fc := m.cfg.Flow
	fc.Rand, fc.NewID = m.cfg.Rand, m.cfg.IDs.Next
	fc.Noise, fc.Identity = d.NoiseKey.Public, d.IdentityKey.Public
	fc.DeviceType = m.cfg.DeviceType
	fc.AutoConfirm = m.cfg.AutoConfirm
	m.flow, m.err = passkey.NewFlow(fc)
	if m.err != nil {
		h.Log(LevelError, "passkey flow", "err", m.err)
	}
	return m.flow
}

// Holding implements HoldingMode.
func (m *PasskeyMode) Holding() bool {
	return !m.done && m.flow != nil && (m.held || m.flow.Active())
}

// Input implements PairingMode: SendPasskeyResponse and ConfirmPasskey.
func (m *PasskeyMode) Input(h ModeHooks, v any) {
	f := m.ensure(h)
	switch in := v.(type) {
	case PasskeyRespond:
		if f == nil || h.Device().Paired() || m.done {
			h.Reply(in.Call, "", passkey.ErrNoRequest)
			return
		}
		out, err := f.SendResponse(h.Now(), in.Assertion)
		if err != nil {
			h.Reply(in.Call, "", err)
			return
		}
		m.calls[passkey.CallResponse] = in.Call
		m.apply(h, out)
	case PasskeyConfirm:
		if f == nil || h.Device().Paired() || m.done {
			h.Reply(in.Call, "", passkey.ErrNoRequest)
			return
		}
		out, err := f.Confirm(h.Now())
		if err != nil {
			h.Reply(in.Call, "", err)
			return
		}
		m.calls[passkey.CallConfirm] = in.Call
		m.apply(h, out)
	}
}

// Node implements PairingMode: the passkey notifications.
func (m *PasskeyMode) Node(h ModeHooks, n binxml.Node) bool {
	if n.Tag != "notification" || m.done || h.Device().Paired() {
		return false
	}
	t := n.Attr("type")
	if t != passkey.TypePrologueRequest && t != passkey.TypeContinuation {
		return false
	}
	f := m.ensure(h)
	if f == nil {
		return false
	}
	out, mine := f.HandleNode(h.Now(), n, m.currentAdv(h))
	if mine {
		m.apply(h, out)
	}
	return mine
}

// currentAdv is the secret a request derives the handoff key from: the
// pair code's after primary_hello, otherwise the device's (the QR's).
func (m *PasskeyMode) currentAdv(h ModeHooks) [32]byte {
	if c := h.s.code; c != nil && c.haveSecret {
		return c.advSecret
	}
	return h.Device().AdvSecret
}

// Answer implements PairingMode: replies to the Flow's IQs, sent through
// h.Request so that the session routes them here. The Flow keeps its own
// reply deadlines (Tick); the session's timeout is only a backstop.
func (m *PasskeyMode) Answer(h ModeHooks, id string, resp binxml.Node, err error) {
	if m.flow == nil || resp.Tag == "" {
		return
	}
	out, _ := m.flow.HandleNode(h.Now(), resp, m.currentAdv(h))
	m.apply(h, out)
}

// Timer implements PairingMode.
func (m *PasskeyMode) Timer(h ModeHooks, k TimerKind) {
	if k != TimerPasskey || m.flow == nil {
		return
	}
	m.apply(h, m.flow.Tick(h.Now()))
}

// TaskDone implements PairingMode: the authenticator's assertion.
func (m *PasskeyMode) TaskDone(h ModeHooks, t TaskDone) {
	if t.Kind != TaskPasskeyAuth || t.ID != m.auth || m.flow == nil || m.done {
		return
	}
	m.auth = 0
	if t.Err != nil {
		h.Emit(ModeEvent{Mode: PasskeyModeName, Value: PasskeyEvent{Event: passkey.ErrorEvent{Err: t.Err}}})
		return
	}
	out, err := m.flow.SendResponse(h.Now(), t.Value.(passkey.Assertion))
	if err != nil {
		h.Emit(ModeEvent{Mode: PasskeyModeName, Value: PasskeyEvent{Event: passkey.ErrorEvent{Err: err}}})
		return
	}
	m.apply(h, out)
}

// AdvSecret implements PairingMode.
func (m *PasskeyMode) AdvSecret() ([32]byte, bool) {
	if m.flow == nil || m.done {
		return [32]byte{}, false
	}
	return m.flow.AdvSecret()
}

// Outstanding implements PairingMode.
func (m *PasskeyMode) Outstanding(time.Time) bool { return m.Holding() }

// Paired implements PairingMode: the session verified pair-success (with
// the Flow's secret while it held the pairing) and stored it.
func (m *PasskeyMode) Paired(h ModeHooks) {
	m.done = true
	h.Cancel(TimerPasskey)
	if m.flow != nil {
		m.flow.Finish()
	}
	for c, id := range m.calls {
		h.Reply(id, "", nil)
		delete(m.calls, c)
	}
}

// apply carries out a Flow Output: sends (IQs through h.Request), events,
// completions, the step timer; ends the connection when a step that held
// the pairing is over without a pair-success.
func (m *PasskeyMode) apply(h ModeHooks, out passkey.Output) {
	for _, n := range out.Send {
		if n.Tag == "iq" && n.Attr("id") != "" {
			// Past the Flow's own reply deadline, so that its Tick decides.
			h.Request(PasskeyModeName, n, m.replyBackstop())
		} else {
			h.Send(n)
		}
	}
	if out.AdvSecret != nil {
		m.held = true
	}
	for _, note := range out.Notes {
		h.Log(LevelInfo, note)
	}
	for _, e := range out.Events {
		h.Emit(ModeEvent{Mode: PasskeyModeName, Value: PasskeyEvent{Event: e}})
		if re, ok := e.(passkey.RequestEvent); ok && m.cfg.Authenticate != nil && m.auth == 0 {
			auth, opts, dl := m.cfg.Authenticate, re.Options, re.Deadline
			m.auth = h.StartTask(TaskPasskeyAuth, func() (any, error) { return auth(opts, dl) })
		}
	}
	for _, c := range out.Done {
		if id, ok := m.calls[c.Call]; ok {
			delete(m.calls, c.Call)
			h.Reply(id, "", c.Err)
		} else if c.Err != nil {
			// The authenticator's response: nobody waits for it, so its
			// refusal is an event.
			h.Emit(ModeEvent{Mode: PasskeyModeName, Value: PasskeyEvent{Event: passkey.ErrorEvent{Err: c.Err, Continuation: c.Call == passkey.CallConfirm}}})
		}
	}
	if dl := m.flow.Deadline(); !dl.IsZero() {
		h.Arm(TimerPasskey, dl)
	} else {
		h.Cancel(TimerPasskey)
	}
	if m.held && !m.flow.Active() && !m.done {
		// The step ended (its deadline passed) without a pair-success:
		// the QR's secret is retired on the phone's side, so nothing is
		// left to pair with here. A reconnect shows fresh QRs.
		m.held = false
		h.Log(LevelInfo, "passkey step ended without linking; disconnecting")
		h.End(EndQRExpired)
	}
}

func (m *PasskeyMode) replyBackstop() time.Duration {
	d := m.cfg.Flow.ReplyTimeout
	if d <= 0 {
		d = passkey.DefaultReplyTimeout
	}
	return d + time.Minute
}
