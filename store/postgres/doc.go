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
// sit in their own BYTEA columns with no length constraint and pass through
// one seal/open pair of functions, the identity today. An at-rest Cipher
// option can later store a self-describing envelope (version byte, nonce,
// ciphertext and tag, bound to the row's noise key and column name) in the
// same columns, tell old raw rows by their length, and reseal them on the
// next write, with no schema change. Secrets never appear in errors or logs,
// and Open does not echo an unparsable connection string (it may hold a
// password).
package postgres
