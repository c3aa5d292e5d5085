// Package bench measures walink side by side with whatsmeow
// (go.mau.fi/whatsmeow) and against the machine's limits: the node codec,
// the transport cipher, pairing crypto, handshakes and idle sessions.
//
// It is a separate module so that the main module never builds or imports
// whatsmeow. Run everything with ./run (or make bench), which writes
// RESULTS.md.
//
// # Benchmarks
//
// Every benchmark is named Benchmark<Area>/<case>/impl=<name>, so that
// benchstat -col /impl lines the implementations up as columns of one run:
//
//   - BenchmarkCodec: binxml vs whatsmeow's binary package, encode and
//     decode of the corpus in binxml/binxmltest (the same stanzas, with
//     whatsmeow's types.JID attributes).
//   - BenchmarkTransport: frame + seal and deframe + open, walink's
//     noise.Cipher vs whatsmeow's per-frame steps vs raw AES-256-GCM.
//   - BenchmarkPairCode, BenchmarkPairSuccess: pairing crypto, walink vs
//     whatsmeow's steps vs raw PBKDF2.
//   - BenchmarkX25519, BenchmarkHandshake: the X25519 cost of one
//     handshake and handshakes in memory and against the local WhatsApp,
//     in this process and in a child process (the sim's CPU alone).
//
// The sessions-at-scale measurement needs a process per run (RSS), so it is
// a command: cmd/sessions. cmd/report turns the raw outputs into RESULTS.md.
package bench
