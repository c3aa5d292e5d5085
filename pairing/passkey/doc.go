// Package passkey implements the passkey ("Shortcake") step that WhatsApp
// puts in front of linking for some accounts since 2026 (PASSKEY.md,
// CHANGES-2026.md §6), for both roles: the companion (walink's client) and
// the primary phone and server (watest).
//
// It is pure: no network, files, clock, goroutines or global randomness.
// Time comes in as time.Time values and randomness through an io.Reader.
//
// # Pieces
//
//   - WebAuthn JSON: [RequestOptions] (PublicKeyCredentialRequestOptions,
//     kept verbatim, with accessors for the challenge, rpId, timeout, user
//     verification and allowed credentials) and [Assertion] (the standard
//     JSON form of an assertion). Bytes are unpadded base64url.
//   - Derivations (PASSKEY.md §7): [HandoffKey], [HandoffProof],
//     [Commitment], [SharedSecret], [EncryptionKey], [ConfirmationCode],
//     [SealPairingRequest] and [OpenPairingRequest]; the protobufs
//     ([CompanionIdentity], [Prologue], [PrimaryIdentity],
//     [PairingRequest]) are waproto's companion_reg.proto.
//   - Nodes, both ways: [PrologueRequest] / [ParsePrologueRequest],
//     [RequestOptionsIQ] / [RequestOptionsResult] /
//     [ParseRequestOptionsResult], [RefIQ] / [RefResult] / [ParseRefResult],
//     [PrologueIQ] / [ParsePrologueIQ], [Continuation] /
//     [ParseContinuation], [CompanionNonceIQ] / [ParseCompanionNonceIQ],
//     [EncryptedPairingRequestIQ] / [ParseEncryptedPairingRequestIQ], and
//     [ParseReply] for the results.
//   - [Flow]: the companion's side as a state machine a session embeds
//     ([NewFlow] fails with [ErrConfig] without Rand or NewID).
//
// # The Flow contract
//
// One Flow per registration connection, owned by the session (one caller
// at a time). Every input is stamped with now from the session's clock;
// every input returns an [Output]: nodes to send in order, then events to
// emit in order, API calls that ended ([Completion]), and a new adv secret
// when one was drawn.
//
// Inputs:
//   - [Flow.HandleNode](now, node, currentAdv) for every incoming node
//     while unpaired; it reports whether the node was the flow's
//     (passkey_prologue_request, crsc_continuation, or a reply to one of
//     its IQs; the session acks notifications itself, as it does all).
//     currentAdv is the adv secret the session holds (the QR's, or the
//     pair code's after primary_hello); only a request reads it.
//   - [Flow.SendResponse](now, assertion): the app's (or the configured
//     authenticator's) assertion. Immediate errors: [ErrNoRequest],
//     [ErrInProgress], [ErrInvalidAssertion]. Otherwise a
//     Completion{[CallResponse]} follows: nil once the server accepted the
//     prologue, an [*IQError] (matches [ErrRefused]) when it refused it,
//     [ErrTimeout].
//   - [Flow.Confirm](now): the user confirmed the code. Immediate errors:
//     [ErrNoRequest], [ErrNoLinkingState], [ErrNotConfirmable],
//     [ErrInProgress]. Otherwise a Completion{[CallConfirm]} follows.
//   - [Flow.Tick](now) whenever [Flow.Deadline] (non-zero) has passed: IQ
//     replies overdue by FlowConfig.ReplyTimeout fail their call, and past
//     the step deadline (the options' timeout + StepGrace from the last
//     request) the step ends with ErrorEvent{[ErrTimeout]}.
//   - [Flow.Finish] once pair-success verified with [Flow.AdvSecret];
//     [Flow.Stop] when the connection ends (waiting calls complete with
//     the given error).
//
// Events, mapped one to one onto the root package's events:
// [RequestEvent] (PairPasskeyRequest), [ConfirmationEvent]
// (PairPasskeyConfirmation), [ErrorEvent] (PairPasskeyError).
//
// What the session must do around it:
//   - While [Flow.Active], stop QR rotation and keep the connection (no
//     QRCodesExpired disconnect in the middle of the user's ceremony).
//   - When Output.AdvSecret is set (at each request), verify pair-success
//     with that secret only ([Flow.AdvSecret]); a pair-success HMAC'd with
//     the QR's secret is then refused with 401 hmac-mismatch (PASSKEY.md
//     §4.7). Keep it in memory; store it as the device's adv secret only
//     when pair-success checks out, then call Finish.
//   - Nothing else of the step is stored: the ephemeral key, nonces, the
//     handoff key and the encryption key live in the Flow only.
//
// # Where walink departs from whatsmeow
//
// On a second passkey_prologue_request the adv secret held is the one the
// flow drew at the first; no QR or code ever carried it, so the phone
// cannot check a proof keyed by it (PASSKEY.md §10). whatsmeow sends one
// anyway and reports SkipHandoffUX; the Flow sends none, so the user
// compares the code. Options that fail to parse in the notification are
// fetched with the IQ, exactly as whatsmeow does; the parsing rules are
// encoding/json's, as there.
package passkey
