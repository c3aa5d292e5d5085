// Package engine holds walink's per-connection protocol as pure code: the
// Session state machine, the ClientPayloads sent in the handshake, the
// stanzas the client builds and parses, IQ ids, QR ref rotation, the
// pair-code rules, reconnect backoff and the classification of stream
// errors and connect failures (the Session's End reasons and events are
// the only rules the client follows).
//
// Nothing here does IO, reads the clock, starts a goroutine or takes a
// lock: time comes in as time.Time values and randomness as an io.Reader,
// so every rule is tested with synthetic nodes and a synthetic clock
// (session_test.go steps whole flows by hand). TestPure enforces it.
//
// # The session
//
// A Session is one connection's protocol state: QR rotation, reg refresh,
// pair-code stages 1 and 2, the pair-success checks, the 515 restart,
// login and pre-key top-up, keepalive, logout and remote unlink. A driver
// (package walink's conn) calls
//
//	actions := s.Step(now, input)
//
// and carries the actions out in order.
//
// Inputs, each stamped with the driver's one clock:
//   - NodeIn: a decoded stanza from the server.
//   - TimerFired{Kind}: a timer armed by ArmTimer is due. The firing is
//     authoritative even if now lags its instant.
//   - TaskDone: the result of a StartTask (PBKDF2 and other slow CPU work).
//   - Saved: the result of a SaveDevice or SavePreKeys.
//   - API calls: PairCodeCall, CancelPairCode, LogoutCall (answered with
//     Reply by CallID), PairingModeInput for plugged-in modes.
//
// Actions:
//   - Send a node; Emit an Event (the driver maps it to its public type).
//   - ArmTimer / CancelTimer by TimerKind at an instant: one instant per
//     kind; all IQ deadlines share TimerIQ (the earliest).
//   - StartTask: run a pure function off the driver's goroutine.
//   - SaveDevice / SavePreKeys / DeleteDevice: store writes. The driver
//     steps Saved back before any other input, and publishes the device to
//     the application only once it is stored.
//   - Reply to a call; End the connection with an EndReason (the driver
//     finishes the step's actions, then stops); Log a diagnostic.
//
// Who owns what: the Session owns the connection's protocol state and the
// device record as last saved (it decides every write: SaveDevice is the
// only way a device changes while connected). The driver owns the
// socket, the one runtime timer, the task goroutines and the store. In
// package walink every input of a connection goes through one queue,
// drained by one driver goroutine at a time (started when items arrive,
// gone when the queue is empty), so the session is stepped serially in
// queue order, with no lock of its own and no second writer. The reader
// only decodes frames into the queue; store writes happen on the driver,
// never on the reader.
//
// # Adding a pairing mode
//
// A new way of pairing (a passkey step, …) is a PairingMode: a value that
// holds its own state and is plugged in with Session.AddPairingMode before
// the first Step. Its methods run inside Step and act only through the
// ModeHooks they receive (Send, Request, Emit, Arm/Cancel, StartTask,
// Reply, FlowEnded, Log). The session routes to it:
//   - API calls: the driver steps PairingModeInput{Mode: m.Name(), Value}
//     (the Value carries the call, e.g. a CallID and options); the mode
//     answers with h.Reply(call, …).
//   - server iqs and notifications the session does not handle itself
//     (notifications are acked by the session first) → Node; replies to
//     h.Request (and their timeouts) → Answer.
//   - timers of kinds from TimerModeFirst, task results of kinds from
//     TaskModeFirst → Timer, TaskDone.
//   - pair-success: a secret from AdvSecret is tried before the QR's; on
//     success every mode gets Paired; Outstanding keeps the connection when
//     the QR refs run out, and FlowEnded ends it once nothing is left.
//   - a HoldingMode (PasskeyMode) that reports Holding takes the whole
//     pairing while its flow is live: the QR rotation pauses, reg
//     refreshes are ignored, a new pair code gets ErrModeHolding, the pair
//     code's wait for pair-success does not give up, and pair-success
//     verifies with the mode's secret only; h.End ends the connection
//     when its flow failed for good.
//
// Its events are ModeEvent{Mode, Value}, mapped by the driver to public
// types. So a mode is: its crypto in pairing (both roles), its state and
// stanzas in engine as a PairingMode, its wire in watest, and on the
// driver side an API method that steps PairingModeInput and a case in the
// event mapping. No edit to the Session itself.
//
// Version recovery and Noise IK resume are not session states: they
// belong to the dial (transport's ClientConfig) and to the driver's
// reconnect decision on EndOutdated / a failed resume; the store columns
// they need are written through SaveDevice with a new SaveTag (from
// SaveModeFirst) when the session must decide the write.
//
// # Wire layouts
//
// The stanza builders document the layout they produce beside the code
// (PROTOCOL.md §10–§19 and CHANGES-2026.md §1–§5).
package engine
