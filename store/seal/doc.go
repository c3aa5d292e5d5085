// Package seal encrypts walink's stored secrets at rest: the private keys
// and the adv secret that the SQLite and PostgreSQL stores write. Both
// stores, and the walink CLI, take a [Cipher] from here.
//
// Two ciphers are provided:
//
//   - [NewAESGCM]: AES-256-GCM under a 32-byte key the caller manages
//     (a KMS, a secrets manager, a file).
//   - [NewPassphrase]: AES-256-GCM under a key derived from a passphrase
//     with Argon2id (RFC 9106: 3 passes, 64 MiB, 4 lanes), memory-hard so a
//     stolen database cannot be brute-forced cheaply. Each sealed value
//     carries the 16-byte salt it was made with; a process draws one salt
//     and derives its key once, and caches keys for salts it reads.
//
// [FromEnv] picks one from the environment, which is how the CLI and most
// services are configured:
//
//	WALINK_STORE_KEY              32-byte key, 64 hex characters or base64
//	WALINK_STORE_KEY_FILE         file holding such a key (or 32 raw bytes)
//	WALINK_STORE_PASSPHRASE       passphrase for Argon2id
//	WALINK_STORE_PASSPHRASE_FILE  file holding the passphrase (one line)
//
// The Argon2id parameters are fixed by the envelope's version byte and
// never read from a stored value, so a tampered store cannot make Open
// derive at a higher cost: another version byte is refused before any
// derivation, a planted salt costs one derivation at the fixed cost, and
// at most 16 derived keys are cached.
//
// At most one may be set; none means secrets are stored in the clear (the
// store file is still created 0600). Key and passphrase files must not be
// readable by group or others. Secrets never appear in this package's
// errors.
//
// A sealed value is opaque to the stores; they add their own envelope
// (a version byte, and the row and column bound in as associated data), so
// a value copied to another row or column does not open.
package seal
