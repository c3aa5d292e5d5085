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
// write there can replace the keys, or plant a -wal file that SQLite would
// replay. One exception: a directory writable only by the user's private
// group (same name as the user, as umask 002 on distributions with user
// private groups makes them) is accepted. Outside Unix, where mode bits do
// not describe who may write, no check is made. The path [Memory] gives a
// throwaway in-memory store for tests.
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
// Each connection keeps a page cache of [DefaultCacheSize] (256 KiB, see
// [WithCacheSize]) rather than SQLite's 2000 KiB, which under the pure-Go
// driver costs up to twice its size in RSS outside the Go heap.
//
// Every change that touches more than one row (a device and its LID mapping,
// a pre-key batch and NextPreKeyID, a delete) is one transaction.
//
// # Secrets at rest
//
// Private keys and the adv secret live in their own BLOB columns
// (noise_priv, identity_priv, spk_priv, adv_secret, pre_keys.priv). By
// default they hold the raw 32 bytes, so protect the file. With
// [WithCipher] (a cipher from store/seal: [NewAESGCM] or seal.NewAESGCM with
// a 32-byte key, seal.NewPassphrase for a passphrase through Argon2id, or
// seal.FromEnv for WALINK_STORE_KEY, WALINK_STORE_KEY_FILE,
// WALINK_STORE_PASSPHRASE or WALINK_STORE_PASSPHRASE_FILE) each is stored as a sealed envelope,
//
//	0x01 || nonce || ciphertext || tag
//
// whose associated data names the column, the owning device's noise key
// and the pre-key id, so a blob copied to another column or row does not
// open ([ErrDecrypt]). Raw and sealed values tell apart by length, so a
// store written in the clear keeps working after a Cipher is added: rows
// are sealed as they are rewritten, or all at once by [Store.Reseal]. A
// sealed store opened without the Cipher fails on read with
// [ErrNoCipher]. secure_delete is on, so replaced or resealed keys do not
// linger in the file's free space.
//
// Secrets never appear in errors or logs; corrupt rows are reported by
// column name only.
package sqlite
