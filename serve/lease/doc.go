// Package lease decides which `walink serve` replica holds each session's
// connection when several replicas share one PostgreSQL database.
// WhatsApp allows one live connection per linked device (a second one
// replaces the first), so every session must be connected by exactly one
// replica at a time, and taken over within seconds when that replica goes.
// [Manager] implements serve.Owner; its [Lease] implements serve.Lease and
// serve.FencedLease.
//
// # Tables
//
// In the first schema of the connection's search_path (next to the store's
// walink_* and the service's serve_* tables), created by New under a
// transaction-scoped advisory lock and recorded in serve_lease_migrations:
//
//	serve_leases    (session_id PK, owner, epoch, expires_at, acquired_at)
//	serve_replicas  (id PK, advertise_url, draining, started_at, expires_at)
//	serve_write_log (id, session_id, owner, epoch, what, at)  -- Config.WriteLog
//
// # Protocol
//
// Acquire. Sessions waiting in Acquire are tried together every Poll (and
// at once when a new one waits): missing rows are inserted free (with
// Config.SessionTable, only for sessions that still exist), then one
// conditional UPDATE takes up to `room` rows that are free (empty owner) or
// expired (expires_at <= now()), setting owner, a new epoch and
// expires_at = now()+TTL, with FOR UPDATE SKIP LOCKED so replicas polling at
// once do not wait on each other. Expiry is decided by the database's
// clock, never by a replica's. Every acquisition, even by the previous
// holder, takes its epoch from one sequence (serve_lease_epochs), so epochs
// grow at every takeover and are never reused, even if rows are deleted:
// the epoch is the fencing token.
//
// Renew. Every Renew, one statement upserts the replica's heartbeat row
// and extends every held lease (WHERE owner = me AND epoch = the one I
// acquired). A held lease the statement did not renew was taken over (or
// deleted): Lost closes at once. A lease whose holder still names it may be
// renewed even after its expiry (nobody took it meanwhile, so nobody else
// connected it), and the row lock orders such a renewal with a concurrent
// takeover: exactly one of them wins.
//
// Self-stop. For each lease the Manager keeps t0, its monotonic clock read
// just before sending the last statement that extended it (the acquisition,
// then every renewal that returned it). A watchdog closes Lost on a lease
// when t0+TTL-StopMargin passes without a newer extension (database
// unreachable, partition, a long GC or scheduling pause). The service
// then closes the connection. Lease.Check applies the same deadline
// synchronously: the service's dial gate calls it before every dial and
// redial, so a process resumed after a pause cannot reconnect in the
// instant before its watchdog runs.
//
// Release. After closing the connection the service calls Release; the row
// is freed (owner emptied, expires_at = now()) by a batched UPDATE that also
// names the epoch, so a late release never frees someone else's lease.
// Other replicas take it at their next poll (Poll, default 500ms): no
// LISTEN connection is needed.
//
// Deletion. The service deletes a session's lease row in the transaction
// that deletes the session (ForgetSQL). With Config.SessionTable a replica
// still waiting for the session makes no new row: its insert reads the
// session row FOR SHARE, so it either runs before the deletion (whose
// DELETE then sees the row) or finds the session gone.
//
// Balance. Each poll reads R, the live replicas (heartbeat not expired, not
// draining), and N = max(leases held by anyone, sessions this replica
// knows). A replica acquires only while it holds fewer than ⌈N/R⌉+Slack,
// and one holding more gives up at most Shed leases per poll (Lost with
// reason "rebalance"; the lease is still renewed until the service
// releases it, so nobody connects the session before it is closed here).
// Since R·(⌈N/R⌉+Slack) ≥ N, every session always has room somewhere. A
// joining replica is counted at its first heartbeat (New), so the others
// shed towards it while it takes what they free. Drain (SIGTERM) marks the
// replica draining (others stop counting it), stops acquiring and gives
// every lease up at once; the others take each within a poll.
//
// Fencing. Each Lease carries a postgres.Fence (session, owner, epoch).
// The session's client writes the store through
// (*postgres.Store).Fenced(fence), and the service checks the same fence
// in its own writes of the session (record, events, outbox): each write
// transaction first runs SELECT owner, epoch, expires_at > now() ... FOR
// SHARE on the lease row and is refused with store.ErrFenced unless the row
// still names this owner and epoch and is unexpired. The share lock
// conflicts with a takeover's UPDATE of the row, so a takeover waits for a
// write in flight to commit, and a write begun after a takeover sees the new
// epoch: no write of an old holder commits after a new holder got the
// lease. Refusals are counted (Stats.Fenced). With Config.WriteLog every
// fenced write also appends (session, owner, epoch, what) to
// serve_write_log in its transaction, so a test can check that no session
// was written under two owners at once: per session, epochs never decrease
// in id order and each epoch has one owner.
//
// # Why two replicas never hold one device
//
// Let an acquisition or renewal be sent at local time t0 and executed by
// the database at real time T ≥ t0 (a statement runs after it is sent). It sets
// expires_at = now_db(T)+TTL, so no other replica can take the lease
// before the database's clock has advanced TTL past T. The holder stops by
// itself at t0+TTL-StopMargin on its own monotonic clock, i.e. at least
// StopMargin before the earliest takeover, measured from an earlier start
// (t0 ≤ T). This needs:
//
//   - the database clock decides every expiry (now() in every statement):
//     replicas' wall clocks may be wrong by any amount, they are never
//     compared;
//   - the rates of the database's and the replica's clocks agree to within
//     StopMargin over a TTL (NTP-disciplined clocks drift by parts per
//     million; a database clock step backwards or forwards, e.g. a manual
//     change or a failover to a replica whose clock is off, breaks the
//     assumption: step clocks only with replicas stopped);
//   - the replica acts on the watchdog within StopMargin: closing a
//     connection is local and takes milliseconds, but a process paused
//     longer than StopMargin (SIGSTOP, a VM freeze) cannot. That case is the
//     fence's: when it resumes, its writes are refused (the epoch moved on),
//     its renewal finds the lease taken and Lost closes, its dial gate
//     refuses to reconnect (Check), and its stale socket is the one
//     WhatsApp's "replaced" closes, never the new owner's. A suspend of the
//     whole machine is the same case: Linux's monotonic clock does not
//     count the time suspended.
//
// Renew*2 + StopMargin < TTL is enforced by New (ErrConfig otherwise) so
// that one failed or slow renewal never stops sessions: the deadline is at
// least two renewal periods after the last success.
//
// Why not advisory locks: a session-level advisory lock lives on one
// server connection, which a transaction-pooling proxy (PgBouncer in
// transaction mode) hands to other clients between transactions, and it
// carries no fencing token, so a paused holder whose connection survived
// could still write. Here every statement is self-contained (no session
// state, no LISTEN; the migration's advisory lock is transaction-scoped),
// so the Manager works through such proxies.
//
// # What an operator configures
//
//   - TTL (default 15s): how long a dead replica's sessions stay
//     unconnected, at most TTL+Poll after its last renewal. It must exceed
//     the longest database outage that sessions should ride out: a replica
//     that cannot renew for TTL-StopMargin (default 12s) closes its
//     connections (they come back when the database does).
//   - Renew (default TTL/3) and StopMargin (default TTL/5): keep
//     Renew*2+StopMargin < TTL; raise StopMargin on hosts with long pauses
//     or unreliable clocks.
//   - Poll (default 500ms): how fast freed sessions are picked up; one small
//     query per replica per poll.
//   - ReplicaID must be unique among running replicas (a restarted replica
//     may reuse its id: it waits for its previous leases to expire or be
//     released, like anyone else). AdvertiseURL is what Owner reports for
//     forwarding.
//   - Connection pooling: any pool or a transaction-pooling proxy works;
//     every replica needs a few connections (heartbeat, polls, fenced
//     writes). pgx prepares and caches statements per server connection:
//     behind PgBouncer in transaction mode use PgBouncer 1.21+ with
//     max_prepared_statements, or add default_query_exec_mode=exec to the
//     DSN. Statement timeouts on the proxy should exceed Renew.
package lease
