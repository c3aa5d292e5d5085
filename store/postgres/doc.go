// Package postgres is a [store.Store] in PostgreSQL, through pgx's
// connection pool, for deployments that run many companion devices or
// several walink processes against one database.
//
// # Opening
//
//	st, err := postgres.Open(ctx, "postgres://walink@db/walink?sslmode=verify-full")
//
// The tables (walink_devices, walink_pre_keys, walink_lid_map and
// walink_schema_migrations) are created in the first schema of the
// connection's search_path; put search_path=NAME in the connection string
// to keep them in their own schema. [OpenPool] takes a pool the caller
// owns.
//
// # Schema and migrations
//
// Numbered migrations (migrations/NNNN_name.sql) are embedded in the binary.
// Open applies the pending ones in a single transaction holding an advisory
// lock keyed by the schema, and records each in walink_schema_migrations.
// PostgreSQL's DDL is transactional, so a failed upgrade leaves the schema
// as it was, and processes starting together apply each migration once. A
// schema from a newer walink is refused with a [*SchemaVersionError].
//
// # Transactions and concurrency
//
// Every change that touches more than one row (a device and its LID
// mapping, a pre-key batch and NextPreKeyID, a delete) is one transaction.
// Each write locks the device row before its pre-keys or mappings, the same
// order everywhere, so concurrent writers cannot deadlock. A batch of
// pre-keys is written with one INSERT … SELECT FROM unnest, one round trip
// however many keys it holds.
//
// # Secrets at rest
//
// The columns mirror the SQLite store's: private keys and the adv secret
// sit in their own BYTEA columns, the raw 32 bytes by default. With
// [WithCipher] (a cipher from store/seal: [NewAESGCM] or seal.NewAESGCM with
// a 32-byte key, seal.NewPassphrase for a passphrase through Argon2id, or
// seal.FromEnv for WALINK_STORE_KEY, WALINK_STORE_KEY_FILE,
// WALINK_STORE_PASSPHRASE or WALINK_STORE_PASSPHRASE_FILE) each is stored as a sealed envelope,
//
//	0x01 || nonce || ciphertext || tag
//
// whose associated data names the column, the owning device's noise key
// and the pre-key id, so a blob copied to another column or row does not
// open ([ErrDecrypt]). The envelope and associated data are the same as
// the SQLite store's, so one Cipher reads both. Raw and sealed values tell
// apart by length: a store written in the clear keeps working after a
// Cipher is added, rows are sealed as they are rewritten, or all at once by
// [Store.Reseal]. A sealed store opened without the Cipher fails on read
// with [ErrNoCipher]. PostgreSQL keeps old row versions until VACUUM and in
// its WAL and backups, so after a Reseal run VACUUM FULL on the walink_
// tables and treat older backups as holding the keys in the clear.
//
// Secrets never appear in errors or logs, and Open does not echo an
// unparsable connection string (it may hold a password).
package postgres
