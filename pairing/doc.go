// Package pairing implements the cryptography of linking a WhatsApp
// companion device, for both sides: the companion (walink's client) and the
// primary phone (watest's virtual phone and server).
//
// It is pure: no network, no files, no clock; randomness comes in through an
// io.Reader argument, so every function can be replayed byte for byte in
// tests.
//
// # QR pairing
//
// [QR] is the content of the QR code (PROTOCOL.md §11.2, CHANGES-2026 §2):
// [QR.String] renders the current 5-field wa.me form and [ParseQR] accepts
// every form a phone must accept.
//
// # Pair code
//
// The "link with phone number" flow (PROTOCOL.md §14): [NewCode] makes the
// 8-character code, [WrapKey] and [UnwrapKey] protect each side's ephemeral
// key with it (PBKDF2-HMAC-SHA256, 131072 iterations, AES-256-CTR),
// [CompanionFinish] builds the companion's key bundle and adv secret, and
// [PrimaryOpenBundle] is the phone's side of the same step. Platform ids and
// the "Browser (OS)" display are checked by [ValidateClientType] and
// [ValidatePlatformDisplay].
//
// # ADV device identity
//
// After either flow the phone sends pair-success: [SignDeviceIdentity] makes
// it (primary role), [VerifyPairSuccess] checks it and produces the
// pair-device-sign reply (companion role), [ErrorReply] maps a failure to the
// error IQ, and [VerifyDeviceSignature] is the server's check of the reply
// (PROTOCOL.md §12).
//
// # Errors
//
// Failures match the sentinels ([ErrHMACMismatch], [ErrSignatureMismatch],
// [ErrInvalidKey], [ErrMalformed], ...) with errors.Is; malformed input is a
// [*ParseError]. Secrets (private keys, adv secrets, codes) never appear in
// error strings.
package pairing
