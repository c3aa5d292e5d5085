// Package noise implements WhatsApp's flavour of the Noise XX handshake
// (Noise_XX_25519_AESGCM_SHA256) for both roles, with the optional IK
// resume and its XXfallback, the server certificate chain, the
// post-handshake transport cipher and the frame codec.
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
// # Resume (IK) and XXfallback
//
// A registered client that cached the server's certificate chain may
// resume with Noise IK (CHANGES-2026 §7): message 1 already carries its
// static key and login payload, encrypted to the cached server static key.
//
//	client                                    server
//	ResumeHello(payload)     --msg1-->        ReadClientHello(msg1)   Mode() = ModeIK
//	ReadServerHello(msg2)    <--msg2--        ServerHello(certChain)  (no static)
//	ClientFinish(nil) → nil message, cipher   Resumed()
//
// A server that no longer has that static key (or, under [IKFallback],
// any server) answers with its static instead; both sides restart as
// Noise_XXfallback_25519_AESGCM_SHA256 from the ephemeral already sent and
// finish exactly like XX, with Mode() = ModeXXFallback. The client checks
// the certificate chain in every mode: the cached windows before resuming
// ([CertInfo.CheckValidity]), the chain of message 2 after a fallback, and
// a chain sent with an accepted resume. [Initiator.ServerCert] is what to
// cache for the next resume.
//
// # Certificates
//
// The server proves it is WhatsApp with a two-level chain (root →
// intermediate → leaf = server static key), see [VerifyCertChain]. The
// Initiator verifies it itself before anything is sent under the new keys;
// tests point it at their own root with InitiatorConfig.RootKey and mint
// chains with [NewCertChain]. A [ChainCache] (InitiatorConfig.Chains)
// spares a reconnecting client the two signature checks of a chain it has
// already verified: only the same bytes under the same root and server key
// hit, and the validity windows are checked on every use.
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
// [Decoder]. Decoder.Fill reads from a connection straight into the
// decoder's buffer, so each byte is copied once on the way in.
package noise
