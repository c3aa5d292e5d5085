// Package serve is `walink serve`: many linked accounts in one process,
// with an HTTP API, a web page, Server-Sent Events, webhooks and metrics.
//
// # Sessions
//
// A session is one account slot: a walink.Client on the shared store
// (Config.NewDevice until it links, then Config.Device). Its status is
// exactly one of [Statuses]; the last transitions are kept with their
// times. Each client event becomes a stored event (the names and fields of
// `walink link --json`, plus "status" and the session lifecycle) and,
// when the status changes, a "status" event.
//
// # State
//
// The service keeps its state in tables of its own (serve_sessions,
// serve_events, serve_outbox, with serve_migrations for their numbering)
// in the store's database: the same SQLite file ([OpenSQLite]) or
// PostgreSQL database ([OpenPostgres]). A state change, the events that
// report it and their webhook outbox rows are written in one transaction,
// so a webhook is never lost or invented by a crash: delivery is at least
// once, deduplicated by the event id.
//
// # API
//
// Routes are under /v1 and documented by the embedded OpenAPI 3.1 document
// at /v1/openapi.json (tests validate every live response against it).
// Errors are RFC 9457 problem details with a stable type
// (urn:walink:problem:NAME). Every route but /healthz and /readyz needs
// an API key (Authorization: Bearer, or X-Api-Key; only hashes are kept)
// or the page's signed, HttpOnly, SameSite=Strict cookie plus the CSRF
// token for unsafe methods.
//
// # Events
//
// /v1/events and /v1/sessions/{id}/events stream Server-Sent Events. The
// id of an event is its global sequence number; a client that reconnects
// with Last-Event-ID gets the stored events after it (a bounded history
// per session, Config.EventHistory), then the live ones. A subscriber that
// falls 256 events behind is dropped and resumes from the history.
//
// # Lifecycle
//
// [Service.Start] reconnects the sessions that were running and linked,
// at most Config.StartConcurrency logins in flight, each after a random
// delay below Config.StartJitter; a first connect that fails is retried
// with jittered backoff. A start slot is held until the login's outcome
// (walink.Client.WaitReady: connected, QR codes shown, or refused).
// Every session's client shares one dial gate (walink.LimitDials with
// StartConcurrency, unless Config.Client.DialGate is set), so the
// reconnects the library makes by itself, after an outage for instance,
// are bounded across all sessions too.
//
// A session that was linking when the service stopped (scan_qr or
// pair_code) cannot resume: its QR or code died with the connection. On
// start it links again from scratch, as if started by the user: starting,
// then scan_qr with a fresh QR (a pair code must be asked for again);
// left unwatched it ends as failed (qr_codes_expired) when the QR codes
// run out. The unpaired device of the earlier attempt is deleted.
//
// The phone's platform of a linked session is kept in the service's own
// table (from the pairing, refreshed from walink.Client.Device on each
// login); pair codes' expires_at is the library's (PairingCode.Expires).
//
// [Service.Shutdown] ends the streams, closes
// every connection without logging out and flushes the outbox until its
// context ends; what is left is sent after the next start.
//
// # Ownership
//
// Which process may hold a session's connection is asked of
// Config.Owner ([Owner], [Lease]). The default owns everything (one
// replica); a lease manager for several replicas on one PostgreSQL
// implements Owner and closes Lease.Lost to make this process let go
// (see Replicas).
//
// # Replicas
//
// Several services ("replicas") can share one PostgreSQL database
// (Config.Cluster, Config.Owner = a serve/lease Manager; `walink serve
// --postgres` sets both). Which replica connects a session is decided by
// leases with fencing epochs: the protocol, the timing argument for why
// two replicas never hold one device, and what an operator must configure
// (TTL against the network, connection pooling) are in the package
// documentation of serve/lease. This package builds the rest on them:
//
//   - Placement. Every replica competes (Owner.Acquire) for every session
//     that should run; the one that gets the lease reads the session's row
//     again, connects it with a store view fenced by the lease, and writes
//     its state under the same fence. A new session is thus placed on a
//     live replica, whichever acquires first within the balance bound. A
//     replica whose lease is lost closes the connection at once and
//     competes again, to take the session back if its holder goes. A stop
//     or delete first records that the session should not run, then lets
//     the lease go, so nobody takes a lease only to find it stopped.
//   - Events. A replica writes an event, in the transaction of the state
//     change, with a NOTIFY of its sequence number on a channel of the
//     schema; every replica LISTENs on a dedicated connection (reconnected
//     with backoff; Cluster.DSN may bypass a transaction-pooling proxy),
//     reads the events it is told about from serve_events and publishes
//     them to its SSE streams. The table is the source of truth: after a
//     reconnect and every Cluster.CatchUpEvery, the listener reads the
//     events after the last it saw (looking back a window), and the hub
//     deduplicates by id. Event ids commit in id order across replicas
//     (each event-writing transaction takes an advisory lock, per schema,
//     before its first id and keeps it to the commit), and an SSE stream
//     on a replica reads the table after the last id it sent whenever an
//     event is announced (through one shared copy of the table's newest
//     events per replica: one read serves all its streams), so a stream
//     and a Last-Event-ID resume on any replica see every event, in id
//     order.
//     The same events keep each replica's copy of the sessions it does not
//     hold current (row, QR code, pair code), so GET requests and the page
//     are answered locally from the database's state.
//   - Forwarding. Requests that need the live client (QR image, pair code,
//     passkey, logout, stop, start, delete, the sim routes) go, on a
//     replica that does not hold the session, to the holder's advertise
//     URL (Locator.Owner) signed with an HMAC under a secret the replicas
//     share in the database (serve_cluster); the caller's key or cookie
//     is never passed on, and a forwarded request is never forwarded again.
//     The page's cookies are signed with a key derived from the same
//     secret, so a load balancer may send a browser to any replica.
//   - Webhooks. The outbox is shared: a replica claims due rows with
//     UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED), moving their
//     next attempt past the delivery's timeout, so each row is sent by one
//     replica; a replica that dies mid-delivery leaves the row to be
//     claimed again when the claim ends (still at least once, deduplicated
//     by the event id).
//   - Shutdown drains: Owner.Drain gives every lease up as its connection
//     closes, and the others connect the sessions within a poll.
//
// Limits: a replica paused past its lease (SIGSTOP, a frozen VM) cannot
// close its sockets, so its sessions' new holders replace those stale
// connections at WhatsApp (one conflict "replaced" per session, on the
// paused side); when it resumes its writes are refused and it reconnects
// nothing under the lost leases. The event-order lock serializes the
// event writes of all replicas (each holds it from its first event id to
// its commit).
//
// # Passkeys
//
// The passkey step (statuses passkey_required and passkey_confirm, routes
// under /v1/sessions/{id}/passkey) is carried out by Config.Passkey
// ([Passkey]); [ClientPasskey] drives it with the client's passkey API
// (walink serve uses it); without one those routes answer 501
// urn:walink:problem:passkey-not-available. While the status is
// passkey_confirm the session object carries passkey{code,
// skip_handoff_ux}, the code the phone shows too, so a page loaded after
// the passkey_confirm event still shows it.
package serve
