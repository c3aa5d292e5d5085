// Package sqlite is walink's default [store.Store]: every device, its
// pre-keys and its LID mapping in one SQLite file, through the pure-Go
// modernc.org/sqlite driver (no cgo).
//
// # Opening
//
//	st, err := sqlite.Open(ctx, "walink.db")
//
// [Open] creates the file with mode 0600 before SQLite opens it and refuses,
// with an [*InsecureFileError] (errors.Is [ErrInsecure]), a database file,
// journal file or directory that group or others can write: whoever can
// write there can replace the keys. The path [Memory] gives a throwaway
// in-memory store for tests.
//
// # Schema and migrations
//
// Numbered migrations (migrations/NNNN_name.sql) are embedded in the binary
// and applied by Open, each in its own transaction together with the
// version bump kept in PRAGMA user_version. A file from a newer walink is
// refused with a [*SchemaVersionError] rather than misread.
//
// # Concurrency and durability
//
// The database runs in WAL mode, so readers never wait for the writer. A
// Store writes through a single connection: its own writers queue in Go,
// and each write transaction starts with BEGIN IMMEDIATE so it never has to
// upgrade a lock mid-way (the upgrade is what fails with "database is
// locked" whatever the busy timeout). Other processes sharing the file wait
// up to the busy timeout (default 10 s) for the lock. Reads use a separate
// read-only pool. synchronous=FULL trades one fsync per commit (writes are
// rare: pairing, pre-key batches) for never losing a commit on power loss;
// NORMAL would be crash-safe but could drop the last pairing result.
//
// Every change that touches more than one row (a device and its LID mapping,
// a pre-key batch and NextPreKeyID, a delete) is one transaction.
//
// # Secrets at rest
//
// Private keys and the adv secret are stored in their own BLOB columns
// (noise_priv, identity_priv, spk_priv, adv_secret, pre_keys.priv) with no
// length constraint, and they pass through one seal/open pair of functions
// on the way in and out. Today that is the identity: the columns hold the
// raw 32 bytes, so protect the file. An at-rest Cipher option can be added
// later without a schema change: it would store a self-describing envelope
// (version byte, nonce, ciphertext and tag, bound to the row's noise key
// and column name as associated data) in the same columns, tell old raw
// rows by their length, and reseal them on the next write. Secrets never
// appear in errors or logs; corrupt rows are reported by column name only.
package sqlite
