package serve

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	wakeys "github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
)

// deleteFailStore is a store whose DeleteDevice fails while fail is set,
// as a database that refuses the write would.
type deleteFailStore struct {
	store.Store
	fail atomic.Bool
}

var errDeleteRefused = errors.New("test: device delete refused")

func (s *deleteFailStore) DeleteDevice(ctx context.Context, pub wakeys.PublicKey) error {
	if s.fail.Load() {
		return errDeleteRefused
	}
	return s.Store.DeleteDevice(ctx, pub)
}

// TestDeleteForce: with WhatsApp unreachable, DELETE refuses (logout
// failed) and ?force=true deletes here; when the device record cannot be
// deleted the answer is a problem and nothing is deleted (the session is
// kept, stopped, and the DELETE can be retried).
func TestDeleteForce(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			fs := &deleteFailStore{}
			e := newEnv(t, envOpts{postgres: pg, logoutWait: time.Second,
				wrapStore: func(st store.Store) store.Store { fs.Store = st; return fs }})
			id := e.linkQR("15550008888")
			if devs, err := e.st.Devices(t.Context()); err != nil || len(devs) != 1 {
				t.Fatalf("store holds %d devices (%v), want the linked one", len(devs), err)
			}
			e.must(200, "POST", "/v1/sessions/"+id+"/stop", nil)
			e.srv.Close() // WhatsApp unreachable: logging out cannot work

			e.problem(502, "logout-failed", "DELETE", "/v1/sessions/"+id, nil)

			fs.fail.Store(true)
			p := e.problem(500, "internal", "DELETE", "/v1/sessions/"+id+"?force=true", nil)
			t.Logf("refused: %v", p["detail"])
			s := e.must(200, "GET", "/v1/sessions/"+id, nil)
			if s["device"] == nil || s["running"] != false {
				t.Fatalf("after a failed forced delete the session should stay, linked and stopped: %v", s)
			}
			if devs, _ := e.st.Devices(t.Context()); len(devs) != 1 {
				t.Fatalf("store holds %d devices after a failed forced delete", len(devs))
			}

			fs.fail.Store(false)
			e.must(204, "DELETE", "/v1/sessions/"+id+"?force=true", nil)
			e.problem(404, "not-found", "GET", "/v1/sessions/"+id, nil)
			if devs, _ := e.st.Devices(t.Context()); len(devs) != 0 {
				t.Fatalf("store keeps %d devices after a forced delete", len(devs))
			}
			// The deletion stands after a restart (nothing was half written).
			e.restart()
			e.problem(404, "not-found", "GET", "/v1/sessions/"+id, nil)
		})
	}
}

// rowOwner hands out leases as rows of a lease table shaped like
// serve/lease's (which cannot be imported here: it imports serve), made
// at Acquire as serve/lease makes missing rows, and removes them with
// ForgetSQL (a LeaseRows).
type rowOwner struct {
	db         atomic.Pointer[sql.DB]
	forgetFail atomic.Bool
}

func (o *rowOwner) Acquire(ctx context.Context, id string) (Lease, error) {
	if _, err := o.db.Load().ExecContext(ctx, `INSERT INTO serve_leases (session_id, owner, epoch, expires_at) VALUES ($1, 'r1', 1, now() + interval '1 hour')
		ON CONFLICT (session_id) DO UPDATE SET owner = 'r1', epoch = serve_leases.epoch + 1`, id); err != nil {
		return nil, err
	}
	return localLease{}, nil
}

func (o *rowOwner) ForgetSQL(id string) (string, []any) {
	if o.forgetFail.Load() {
		return `DELETE FROM serve_leases_gone WHERE session_id = $1`, []any{id}
	}
	return `DELETE FROM serve_leases WHERE session_id = $1`, []any{id}
}

var _ LeaseRows = (*rowOwner)(nil)

// TestDeleteRemovesLeaseRow: deleting a session removes its lease row in
// the same transaction as the session row: both go, or (the lease
// statement failing) neither.
func TestDeleteRemovesLeaseRow(t *testing.T) {
	owner := &rowOwner{}
	e := newEnv(t, envOpts{postgres: true, mutate: func(c *Config) { c.Owner = owner }})
	db := e.db.db
	if _, err := db.Exec(`CREATE TABLE serve_leases (session_id TEXT PRIMARY KEY, owner TEXT NOT NULL DEFAULT '',
			epoch BIGINT NOT NULL DEFAULT 0, expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity')`); err != nil {
		t.Fatal(err)
	}
	owner.db.Store(db)
	leaseRows := func(id string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM serve_leases WHERE session_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	created := func() string {
		t.Helper()
		id := e.must(201, "POST", "/v1/sessions", map[string]any{"name": "lease row"})["id"].(string)
		deadline := time.Now().Add(10 * time.Second)
		for leaseRows(id) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no lease row made for the started session")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return id
	}

	id := created()
	e.must(204, "DELETE", "/v1/sessions/"+id, nil)
	if n := leaseRows(id); n != 0 {
		t.Fatalf("the deleted session's lease row stayed (%d)", n)
	}

	id = created()
	owner.forgetFail.Store(true)
	e.problem(500, "internal", "DELETE", "/v1/sessions/"+id, nil)
	e.must(200, "GET", "/v1/sessions/"+id, nil)
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM serve_sessions WHERE id = $1`, id).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("session row after a failed delete: %d (%v); the transaction should have kept it", rows, err)
	}
	if n := leaseRows(id); n != 1 {
		t.Fatalf("lease row after a failed delete: %d", n)
	}
	owner.forgetFail.Store(false)
	e.must(204, "DELETE", "/v1/sessions/"+id, nil)
	if n := leaseRows(id); n != 0 {
		t.Fatalf("the deleted session's lease row stayed (%d)", n)
	}
	if err := db.QueryRow(`SELECT count(*) FROM serve_sessions WHERE id = $1`, id).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("session row after the delete: %d (%v)", rows, err)
	}
}
