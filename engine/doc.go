// Package engine holds the pure parts of walink's session logic: the
// ClientPayloads sent in the handshake, the stanzas the client builds and
// parses, IQ id generation, QR ref rotation, pair-code flow rules, reconnect
// backoff and the classification of stream errors and connect failures.
//
// Nothing here does IO, reads the clock or draws randomness on its own:
// time comes in as time.Time values and randomness as an io.Reader, so every
// rule is unit-tested with synthetic nodes and fixed clocks. Package walink
// drives it with the socket, timers, the store and the event dispatcher.
//
// # Wire layouts
//
// The stanza builders document the layout they produce beside the code
// (PROTOCOL.md §10–§19 and CHANGES-2026.md §1–§5).
package engine
