// Package keys holds walink's typed Curve25519 keys: X25519 key pairs for
// Diffie-Hellman, XEdDSA signatures in the libsignal convention (the one
// WhatsApp uses for certificates, pre-keys and device identities), pre-keys,
// signed pre-keys and registration ids.
//
// The package is pure: randomness comes in as an io.Reader, there are no
// clocks, sockets or goroutines.
//
// # Typed keys
//
// [PrivateKey] and [PublicKey] wrap unexported 32-byte arrays. A private key
// prints as "keys.PrivateKey(redacted)" under every fmt verb, so a key that
// ends up in a log line or an error string leaks nothing. Compare keys with
// their Equal methods, which run in constant time.
//
// # Signatures
//
// [PrivateKey.Sign] makes the randomized XEdDSA signature libsignal makes
// (the Edwards sign bit carried in the top bit of byte 63), and [Verify]
// accepts both that form and spec XEdDSA signatures (sign bit 0).
//
// # X25519
//
// [PrivateKey.ECDH] runs CIRCL's Montgomery ladder (four 64-bit limbs,
// MULX/ADX assembly) on amd64 CPUs with BMI2 and ADX, about 1.4× faster than
// the 51-bit field crypto/ecdh uses, and the package's own constant-time
// ladder on that field elsewhere; both are tested against crypto/ecdh and
// each other (FuzzX25519 in the tests). Public keys come from an Edwards
// fixed-base multiplication, several times faster than a ladder.
package keys
