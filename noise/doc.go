// Package noise implements WhatsApp's flavour of the Noise XX handshake
// (Noise_XX_25519_AESGCM_SHA256) for both roles, the server certificate
// chain, the post-handshake transport cipher and the frame codec.
//
// The package is pure: it does no IO, reads no clock and draws no
// randomness of its own. Randomness comes in as an io.Reader and time as an
// argument or a func in a config; package transport moves the bytes.
//
// # Handshake
//
// An [Initiator] (client) and a [Responder] (server) are values that take
// the peer's message and return the next one:
//
//	client                                    server
//	ClientHello()            --msg1-->        ReadClientHello(msg1)
//	ReadServerHello(msg2)    <--msg2--        ServerHello(certChain)
//	ClientFinish(payload)    --msg3-->        ReadClientFinish(msg3)
//
// Each message is a serialized HandshakeMessage protobuf, sent as the body
// of one frame. WhatsApp departs from the Noise spec in two ways that
// matter: the empty payload of message 1 is not hashed, and nonces carry a
// 32-bit counter. The prologue is the 4-byte connection header.
//
// The optional IK resume (CHANGES-2026 §7) is not implemented; the
// symmetric state is shared code, so adding it means a new state machine
// beside Initiator, not changes to it.
//
// # Certificates
//
// The server proves it is WhatsApp with a two-level chain (root →
// intermediate → leaf = server static key), see [VerifyCertChain]. The
// Initiator verifies it itself before anything is sent under the new keys;
// tests point it at their own root with InitiatorConfig.RootKey and mint
// chains with [NewCertChain].
//
// # Transport
//
// A finished handshake yields a [Cipher]: AES-256-GCM per direction with a
// counter nonce and no associated data. A failed Open breaks it for good.
//
// # Framing
//
// Every message is a 3-byte big-endian length and a body; the client
// prefixes its first frame once with the connection header (and optionally
// an edge-routing pre-intro), see [AppendIntro], [AppendFrame] and
// [Decoder].
package noise
