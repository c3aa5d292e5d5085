// Package jid is WhatsApp's address type: parsing, formatting and the
// server constants used by the multi-device protocol.
//
// # Forms
//
// A JID is written in one of these forms:
//
//	s.whatsapp.net                    bare server
//	15551234567@s.whatsapp.net        user
//	15551234567:3@s.whatsapp.net      user and device ("AD" form; device 0 is the phone)
//	15551234567.2:3@s.whatsapp.net    legacy agent 2, device 3
//	7-100000000000001:2@interop       integrator 7 (interop JIDs only)
//
// [Parse] accepts exactly these forms (plus "@server", which Baileys prints
// for a bare server) and rejects everything else with an error wrapping
// [ErrInvalid]; [JID.String] writes them, so Parse(j.String()) == j for
// every JID that Parse returns.
//
// The interop form is walink's own: the integrator number is written before
// the user, separated by '-', whenever it is non-zero or the user itself
// contains a '-'.
//
// The package is pure: no I/O, no clocks, no randomness.
package jid
