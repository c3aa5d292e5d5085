package engine

import (
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// Input is one thing that happened to a Session: a node, a timer, a task
// result, a save result, or an API call.
type Input interface{ isInput() }

// NodeIn is a decoded stanza from the server.
type NodeIn struct{ Node binxml.Node }

// TimerFired says the timer of Kind armed by ArmTimer is due.
type TimerFired struct{ Kind TimerKind }

// TaskDone is the result of a StartTask's Run.
type TaskDone struct {
	Kind  TaskKind
	ID    uint64
	Value any
	Err   error
}

// Saved is the result of a SaveDevice or SavePreKeys action; Device is the
// record that was written (nil for a delete).
type Saved struct {
	Tag    SaveTag
	Device *store.Device
	Err    error
}

// CallID names an API call so that its Reply finds the caller; the driver
// hands them out, never zero.
type CallID uint64

// PairCodeCall asks for a pair code (stage 1 of pair-code linking).
// The Reply carries the code once the server accepted companion_hello.
type PairCodeCall struct {
	Call CallID
	Req  CodeRequest
}

// CodeRequest is a validated PairWithCode request.
type CodeRequest struct {
	Phone      string // digits only
	ShowPush   bool
	CustomCode string // "" = random
	PlatformID string
	Display    string
}

// CancelPairCode ends the outstanding code (Call zero) or the request of
// one call whose caller gave up.
type CancelPairCode struct{ Call CallID }

// LogoutCall unlinks the device (remove-companion-device).
type LogoutCall struct{ Call CallID }

// PairingModeInput carries an API call or any other value to the
// PairingMode named Mode.
type PairingModeInput struct {
	Mode  string
	Value any
}

func (NodeIn) isInput()           {}
func (TimerFired) isInput()       {}
func (TaskDone) isInput()         {}
func (Saved) isInput()            {}
func (PairCodeCall) isInput()     {}
func (CancelPairCode) isInput()   {}
func (LogoutCall) isInput()       {}
func (PairingModeInput) isInput() {}

// Action is one thing a Session asks its driver to do. Actions of one Step
// are carried out in order.
type Action interface{ isAction() }

// Send writes a stanza.
type Send struct{ Node binxml.Node }

// Emit delivers an event to the application.
type Emit struct{ Event Event }

// ArmTimer (re)arms the one timer of Kind to fire at At (driver's clock);
// the driver steps TimerFired{Kind} when it is due.
type ArmTimer struct {
	Kind TimerKind
	At   time.Time
}

// CancelTimer disarms the timer of Kind.
type CancelTimer struct{ Kind TimerKind }

// StartTask runs Run off the driver's goroutine (slow, pure CPU work such
// as PBKDF2) and steps TaskDone{Kind, ID, …} with its result.
type StartTask struct {
	Kind TaskKind
	ID   uint64
	Run  func() (any, error)
}

// SaveDevice stores Device (one PutDevice) and steps Saved{Tag, …}. The
// driver publishes the record to the application only once it is stored.
type SaveDevice struct {
	Tag    SaveTag
	Device *store.Device
}

// SavePreKeys stores the private halves of PreKeys and the next pre-key
// id, then steps Saved{Tag: SavePreKeyBatch, Device}; Device carries the new
// NextPreKeyID.
type SavePreKeys struct {
	Device  *store.Device
	PreKeys []keys.PreKey
	Next    uint32
}

// DeleteDevice removes the device's session from the store (logout, a
// refused unconfirmed session); nothing is stepped back.
type DeleteDevice struct{ Device *store.Device }

// Reply answers an API call.
type Reply struct {
	Call  CallID
	Value string
	Err   error
}

// End closes the connection for Reason; the driver runs the rest of the
// step's actions, then stops.
type End struct{ Reason EndReason }

// Log is a diagnostic for the driver's logger. Args never carry secrets.
type Log struct {
	Level LogLevel
	Msg   string
	Args  []any
}

func (Send) isAction()         {}
func (Emit) isAction()         {}
func (ArmTimer) isAction()     {}
func (CancelTimer) isAction()  {}
func (StartTask) isAction()    {}
func (SaveDevice) isAction()   {}
func (SavePreKeys) isAction()  {}
func (DeleteDevice) isAction() {}
func (Reply) isAction()        {}
func (End) isAction()          {}
func (Log) isAction()          {}

// LogLevel mirrors log/slog's levels (engine does not log itself).
type LogLevel int

// Log levels, equal to slog's.
const (
	LevelDebug LogLevel = -4
	LevelInfo  LogLevel = 0
	LevelWarn  LogLevel = 4
	LevelError LogLevel = 8
)

// TimerKind names one of a session's timers; each kind has at most one
// armed instant.
type TimerKind int

// Timer kinds. Pairing modes use kinds from TimerModeFirst on.
const (
	TimerQR        TimerKind = iota + 1 // the current QR ref expires
	TimerCode                           // the pair code's window, or the pair-success wait after companion_finish
	TimerConfirm                        // the 515 after pair-device-sign
	TimerKeepalive                      // the next ping
	TimerIQ                             // the earliest deadline of the outstanding requests
	TimerModeFirst TimerKind = 100
)

func (k TimerKind) String() string {
	switch k {
	case TimerQR:
		return "qr"
	case TimerCode:
		return "code"
	case TimerConfirm:
		return "confirm"
	case TimerKeepalive:
		return "keepalive"
	case TimerIQ:
		return "iq"
	}
	return "mode"
}

// TaskKind names a task's purpose. Pairing modes use kinds from
// TaskModeFirst on.
type TaskKind int

// Task kinds.
const (
	TaskPrepareCode TaskKind = iota + 1 // the code, its ephemeral key and PBKDF2 wrap
	TaskFinishCode                      // PBKDF2 unwrap and the key bundle of stage 2
	TaskModeFirst   TaskKind = 100
)

// SaveTag says why a device is saved, so its Saved is routed.
type SaveTag int

// Save tags.
const (
	SaveAdvSecret   SaveTag = iota + 1 // companion_reg_refresh rotated the adv secret
	SavePaired                         // pair-success accepted (Unconfirmed)
	SaveConfirm                        // the 515 confirmed the link
	SaveLogin                          // a login confirmed the session or moved the LID
	SavePreKeyBatch                    // pre-keys before their upload
	SaveModeFirst   SaveTag = 100
)

func (t SaveTag) String() string {
	return map[SaveTag]string{SaveAdvSecret: "adv-secret", SavePaired: "paired", SaveConfirm: "confirm", SaveLogin: "login", SavePreKeyBatch: "pre-keys"}[t]
}

// EndReason is why a connection ended; the driver decides on it whether and
// when to reconnect.
type EndReason int

// End reasons.
const (
	EndNone        EndReason = iota
	EndClosed                // closed by us (Disconnect, Close) or the socket closed under us while closing
	EndNetwork               // read error or a stream error worth a reconnect
	EndRestart               // 515: reconnect at once, silently
	EndRateLimited           // 429: reconnect with a longer delay
	EndLoggedOut             // unlinked: session cleared
	EndReplaced              // another connection took over
	EndOutdated              // 405
	EndBanned                // 402
	EndQRExpired             // every QR ref expired
	EndFatal                 // a failure that a retry will not fix
)

func (e EndReason) String() string {
	return [...]string{"none", "closed", "network", "restart", "rate-limited", "logged-out", "replaced", "outdated", "banned", "qr-expired", "fatal"}[e]
}

// Event is something the application is told. The driver maps each to its
// public event type.
type Event interface{ isSessionEvent() }

// Session events (see package walink's events of the same names).
type (
	PairingQR struct {
		Code    string
		Timeout time.Duration
	}
	PairingCode struct {
		Code    string
		Timeout time.Duration
		Expires time.Time // the step's now + Timeout
	}
	PairingCodeRefresh struct{ ForceManual bool }
	QRCodesExpired     struct{}
	Paired             struct {
		ID, LID                jid.JID
		BusinessName, Platform string
	}
	PairError struct {
		ID, LID                jid.JID
		BusinessName, Platform string
		Err                    error
	}
	Connected struct{}
	LoggedOut struct {
		OnConnect bool
		Reason    int
	}
	Replaced       struct{}
	ClientOutdated struct{}
	TemporaryBan   struct {
		Code   int
		Expire time.Duration
	}
	ConnectFailure struct {
		Reason  int
		Message string
	}
	// ModeEvent is an event of a pairing mode, mapped by the driver.
	ModeEvent struct {
		Mode  string
		Value any
	}
)

func (PairingQR) isSessionEvent()          {}
func (PairingCode) isSessionEvent()        {}
func (PairingCodeRefresh) isSessionEvent() {}
func (QRCodesExpired) isSessionEvent()     {}
func (Paired) isSessionEvent()             {}
func (PairError) isSessionEvent()          {}
func (Connected) isSessionEvent()          {}
func (LoggedOut) isSessionEvent()          {}
func (Replaced) isSessionEvent()           {}
func (ClientOutdated) isSessionEvent()     {}
func (TemporaryBan) isSessionEvent()       {}
func (ConnectFailure) isSessionEvent()     {}
func (ModeEvent) isSessionEvent()          {}

// Error makes an IQ's <error> usable as an error value (the reply a
// request failed with).
func (e *IQErrorInfo) Error() string {
	s := "engine: server replied " + itoa(e.Code) + " " + e.Text
	if e.Backoff > 0 {
		s += " (backoff " + e.Backoff.String() + ")"
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// iqKind says what an outstanding request is for.
type iqKind int

const (
	iqHello iqKind = iota + 1
	iqFinish
	iqPreKeyCount
	iqPreKeyUpload
	iqActive
	iqPing
	iqLogout
	iqMode
)

type pendingIQ struct {
	kind     iqKind
	deadline time.Time
	call     CallID
	flow     *codeState // iqHello, iqFinish
	count    int        // iqPreKeyUpload: keys sent
	had      int        // iqPreKeyUpload: the server's count before
	mode     string     // iqMode
	id       string     // iqMode
}

type preKeyUpload struct {
	pks []keys.PreKey
	had int
}

// PairingMode is a way of pairing plugged into a Session beside the QR and
// the pair code (a passkey step, …): its state lives in the value, its
// methods run inside Step and act only through the ModeHooks they get.
// See the package doc, "Adding a pairing mode".
type PairingMode interface {
	// Name routes PairingModeInput and the mode's requests.
	Name() string
	// Input receives PairingModeInput{Mode: Name()}: the mode's API calls.
	Input(h ModeHooks, v any)
	// Node is offered every server iq and notification the session itself
	// does not handle; it reports whether it took it (notifications are
	// acknowledged by the session either way).
	Node(h ModeHooks, n binxml.Node) bool
	// Answer receives the reply to a request sent with h.Request (err is
	// *IQErrorInfo for an error reply, ErrTimeout when none came).
	Answer(h ModeHooks, id string, resp binxml.Node, err error)
	// Timer receives a timer armed with h.Arm (kinds from TimerModeFirst).
	Timer(h ModeHooks, k TimerKind)
	// TaskDone receives the result of a task started with h.StartTask.
	TaskDone(h ModeHooks, t TaskDone)
	// AdvSecret returns a secret the mode agreed with the phone, which a
	// pair-success is then verified with before the QR's own.
	AdvSecret() ([32]byte, bool)
	// Outstanding reports whether the mode should keep the connection
	// once every QR ref has expired.
	Outstanding(now time.Time) bool
	// Paired says a pair-success was accepted (by whichever mode): the
	// mode ends its flow.
	Paired(h ModeHooks)
}

// HoldingMode is a PairingMode that can hold the whole pairing while its
// flow is live (a passkey step: the phone retired the QR's and the code's
// adv secret). While Holding: QR rotation pauses (no new QR, no
// QRCodesExpired disconnect), companion_reg_refresh is ignored, a new pair
// code is refused with ErrModeHolding, and pair-success is verified with
// the mode's AdvSecret only.
type HoldingMode interface {
	PairingMode
	Holding() bool
}

// ModeHooks are a PairingMode's handle on the session during one Step.
type ModeHooks struct {
	s   *Session
	out *actions
	now time.Time
}

func (s *Session) hooks(out *actions, now time.Time) ModeHooks {
	return ModeHooks{s: s, out: out, now: now}
}

// Now is the step's time.
func (h ModeHooks) Now() time.Time { return h.now }

// Device is the session's device.
func (h ModeHooks) Device() *store.Device { return h.s.dev }

// NextID returns a fresh IQ id.
func (h ModeHooks) NextID() string { return h.s.cfg.IDs.Next() }

// Send writes a stanza.
func (h ModeHooks) Send(n binxml.Node) { h.out.send(n) }

// Request sends an IQ (its id attribute must be set) whose answer comes
// to the mode's Answer; wait 0 means the session's IQ timeout.
func (h ModeHooks) Request(mode string, n binxml.Node, wait time.Duration) {
	h.s.request(h.out, h.now, n, pendingIQ{kind: iqMode, mode: mode, id: n.Attr("id")}, wait)
}

// Emit delivers an event (a ModeEvent or one of the session's own).
func (h ModeHooks) Emit(e Event) { h.out.emit(e) }

// Arm arms a timer of the mode (k from TimerModeFirst on).
func (h ModeHooks) Arm(k TimerKind, at time.Time) { h.s.arm(h.out, k, at) }

// Cancel disarms a timer of the mode.
func (h ModeHooks) Cancel(k TimerKind) { h.s.cancel(h.out, k) }

// StartTask runs run off the driver's goroutine; the result comes to
// TaskDone with this kind and the returned id.
func (h ModeHooks) StartTask(k TaskKind, run func() (any, error)) uint64 {
	return h.s.newTask(h.out, k, run)
}

// Reply answers an API call the mode received through Input.
func (h ModeHooks) Reply(call CallID, value string, err error) {
	h.out.add(Reply{Call: call, Value: value, Err: err})
}

// Log records a diagnostic.
func (h ModeHooks) Log(level LogLevel, msg string, args ...any) { h.out.log(level, msg, args...) }

// FlowEnded tells the session the mode's flow is over: when the QR refs
// are spent too and nothing else is outstanding, the connection ends
// (EndQRExpired), as nothing is left to pair with.
func (h ModeHooks) FlowEnded() { h.s.flowEnded(h.out) }

// End ends the connection: a mode whose flow failed for good after it held
// the pairing (nothing is left to pair with on this connection).
func (h ModeHooks) End(r EndReason) { h.s.finish(h.out, r) }
