package lease

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestForgetDeletedSession: a session deleted together with its lease row
// (ForgetSQL in the deleting transaction, as the service does) leaves no
// row behind: the holder finds the lease lost, and with
// Config.SessionTable a replica still waiting for the session makes no
// new row. Without SessionTable the waiting replica makes the row again
// (the leftover the option prevents).
func TestForgetDeletedSession(t *testing.T) {
	if _, err := New(t.Context(), Config{DSN: "x", ReplicaID: "a", SessionTable: "s; DROP TABLE x"}); !errors.Is(err, ErrConfig) {
		t.Errorf("SessionTable not a table name: %v, want ErrConfig", err)
	}
	for _, withTable := range []bool{true, false} {
		name := "SessionTable"
		if !withTable {
			name = "no SessionTable"
		}
		t.Run(name, func(t *testing.T) {
			dsn := testSchema(t)
			ctx := t.Context()
			ca, cb := fast(dsn, "a"), fast(dsn, "b")
			if withTable {
				ca.SessionTable, cb.SessionTable = "sessions", "sessions"
			}
			a := newManager(t, ca)
			if _, err := a.pool.Exec(ctx, `CREATE TABLE sessions (id TEXT PRIMARY KEY); INSERT INTO sessions VALUES ('s1')`); err != nil {
				t.Fatal(err)
			}
			b := newManager(t, cb)
			rows := func() int {
				t.Helper()
				var n int
				if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM serve_leases WHERE session_id = 's1'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			l, err := a.AcquireLease(ctx, "s1") // the row is made: the session exists
			if err != nil {
				t.Fatal(err)
			}
			// b waits to take over, as every replica does.
			bctx, bcancel := context.WithCancel(ctx)
			defer bcancel()
			got := make(chan *Lease, 1)
			go func() {
				l, _ := b.AcquireLease(bctx, "s1")
				got <- l
			}()
			waitFor(t, 5*time.Second, "b waiting", func() bool { return b.Stats().Waiting == 1 })

			tx, err := a.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id = 's1'`); err != nil {
				t.Fatal(err)
			}
			q, args := a.ForgetSQL("s1")
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-l.Lost():
			case <-time.After(5 * time.Second):
				t.Fatal("the holder did not lose the deleted lease")
			}
			l.Release()

			// Ten of b's polls.
			time.Sleep(10 * ca.Poll)
			n := rows()
			if withTable && n != 0 {
				t.Fatalf("a replica waiting for the deleted session made its lease row again (%d)", n)
			}
			if !withTable && n != 1 {
				t.Fatalf("without SessionTable the waiting replica should make the row again; %d rows", n)
			}
			bcancel()
			if bl := <-got; bl != nil {
				if withTable {
					t.Error("b acquired the deleted session's lease")
				}
				bl.Release()
			}
		})
	}
}
