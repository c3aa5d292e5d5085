// Package walink links a companion device to a WhatsApp multi-device
// account, by QR code or by an 8-character pair code, and keeps it
// connected.
//
// # Quick start
//
//	st, err := sqlite.Open(ctx, "walink.db") // or memstore.New() in tests
//	cli := walink.NewClient(st, walink.Config{})
//	cli.AddEventHandler(func(e walink.Event) {
//		switch e := e.(type) {
//		case walink.PairingQRCode:
//			showQR(e.Code) // rotates: a new event replaces it
//		case walink.PairSuccess:
//			fmt.Println("linked as", e.ID)
//		case walink.Connected:
//			fmt.Println("online")
//		case walink.LoggedOut:
//			fmt.Println("unlinked:", e.Reason)
//		}
//	})
//	err = cli.Connect(ctx)
//	defer cli.Close()
//
// The first Connect makes a new device (noise, identity and signed
// pre-keys, registration id, adv secret), stores it and registers; the
// server offers QR refs, which arrive as [PairingQRCode] events (60 s for
// the first, 20 s for each next, see [Config]). When the phone scans one,
// the client verifies the phone's signed device identity, saves the whole
// session in one store write, answers, follows WhatsApp's restart (stream
// error 515, handled silently) and logs in: [PairSuccess], then
// [Connected]. Later Connects log in with the saved session and never pair.
//
// # Pair code
//
// Instead of scanning, the user can type a code: [Client.PairWithCode]
// returns it (also as [PairingCode]). QR and code run side by side; the
// first to complete wins. Asked before the connection is ready, it waits.
// The key derivation (PBKDF2, 2^17 rounds) runs as a task of its own,
// never on the goroutine that steps the connection.
//
// # Passkey step
//
// Since 2026 WhatsApp may ask for the account's passkey (WebAuthn) after a
// QR scan or a pair code, before it links (PASSKEY.md): the client emits
// [PairPasskeyRequest]; answer with [Client.SendPasskeyResponse] (or set
// [Config.PasskeyAuthenticator]), then, on [PairPasskeyConfirmation],
// check the code the phone shows and call [Client.ConfirmPasskey] (or set
// [Config.PasskeyAutoConfirm]). Meanwhile the QR stops rotating and the
// connection is kept; nothing is stored until pair-success verifies with
// the step's new adv secret, which is stored with the device. Failures no
// call returns are [PairPasskeyError]. The step is the session's pairing
// mode engine.PasskeyMode.
//
// # Events
//
// Events are typed values ([Event] is sealed), delivered in order, one at
// a time, to every handler of [Client.AddEventHandler] by a goroutine the
// client owns, which runs only while events are queued.
// The queue is unbounded: a slow handler delays later events, never the
// connection.
//
// # Connection lifecycle
//
// After Connect the client keeps the connection: keepalive pings every
// 20–30 s, reconnection with exponential backoff and jitter after
// unexpected drops ([ReconnectPolicy]). It stops for good on [Client.Disconnect],
// [Client.Close], [Client.Logout], and after [LoggedOut], [StreamReplaced],
// [ClientOutdated], [TemporaryBan] or [QRCodesExpired]. A logged-out
// device is deleted from the store; the next Connect pairs a new one.
//
// # Testing
//
// Package watest is a local WhatsApp with a virtual phone; point
// Config.ServerURL and Config.ServerRoot at it (see the examples), or
// serve its Handler over net.Pipe and set Config.Dial: then client and
// server run inside a testing/synctest bubble, where the protocol's real
// timers (60 s QR refs, 180 s codes, keepalive) cost no time.
// Package store/memstore is an in-memory store for tests.
//
// # Design
//
// The whole per-connection protocol is engine.Session, a pure state
// machine stepped with inputs (a node, a timer that fired, a task's
// result, a save's result, an API call) that returns actions (send, emit,
// arm or cancel a timer, start a task, save or delete the device, reply,
// end). This package is its driver: the runner's goroutine reads frames;
// everything reaches the session through one queue, drained by one driver
// goroutine at a time that carries the actions out, so the session and the
// stored device have exactly one writer. Timers are instants of
// Config.Now served by one runtime timer; slow CPU work (PBKDF2) runs as
// tasks; store writes run on the driver, never on the reader. The driver,
// the tasks and the timer's callback are joined before the connection
// reports its end, and Close joins everything.
package walink
