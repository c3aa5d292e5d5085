// Package memstore is an in-memory [store.Store]: nothing survives the
// process. It is meant for tests (yours and walink's) and for trying the
// library out; use store/sqlite for anything that must remember a session.
//
// Every method returns deep copies, so callers can never change stored
// records behind the store's back, exactly as with a database.
package memstore
