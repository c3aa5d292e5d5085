package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestChaos: three replicas, sessions writing under their leases, while
// replicas lose their database for random spans (shorter and longer than
// the self-stop budget) and are drained and replaced. Throughout, no
// session is connected by two replicas at once, no write is refused while
// its holder still believes it holds the lease (the timing argument), and
// the write log shows one owner per epoch in order.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos takes ~15s")
	}
	dsn := testSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rng := rand.New(rand.NewPCG(1, 2))
	ids := sessions(24)
	s := newSim()
	var early atomic.Int64 // writes refused while Lost was open
	var writes atomic.Int64

	type replica struct {
		m      *Manager
		cancel context.CancelFunc
		outage atomic.Bool
	}
	var mu sync.Mutex
	reps := map[string]*replica{}
	n := 0
	start := func() {
		n++
		id := fmt.Sprintf("r%d", n)
		cfg := fast(dsn, id)
		cfg.WriteLog = true
		m, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{m: m}
		m.mu.Lock()
		m.renewHook = func() error {
			if r.outage.Load() {
				return errors.New("database unreachable (chaos)")
			}
			return nil
		}
		m.mu.Unlock()
		rctx, rcancel := context.WithCancel(ctx)
		r.cancel = rcancel
		for _, sid := range ids {
			s.runWith(rctx, m, sid, func(l *Lease) {
				// A connected session writes every 50ms until Lost.
				tk := time.NewTicker(50 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-l.Lost():
						return
					case <-rctx.Done():
						return
					case <-tk.C:
					}
					err := fenceWrite(rctx, m, l, "put device")
					if err == nil {
						writes.Add(1)
						continue
					}
					if rctx.Err() != nil {
						return
					}
					select {
					case <-l.Lost():
					default:
						early.Add(1)
						t.Errorf("%s: write under a lease %s believes held refused: %v", sid, id, err)
					}
				}
			})
		}
		mu.Lock()
		reps[id] = r
		mu.Unlock()
	}
	for range 3 {
		start()
	}
	pick := func() (string, *replica) {
		mu.Lock()
		defer mu.Unlock()
		keys := make([]string, 0, len(reps))
		for k := range reps {
			keys = append(keys, k)
		}
		k := keys[rng.IntN(len(keys))]
		return k, reps[k]
	}
	var churn sync.WaitGroup
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		id, r := pick()
		switch rng.IntN(3) {
		case 0, 1: // lose the database for 0.3s..3.5s (budget is 2s)
			d := time.Duration(300+rng.IntN(3200)) * time.Millisecond
			t.Logf("%s loses the database for %v", id, d)
			r.outage.Store(true)
			churn.Add(1)
			go func() {
				defer churn.Done()
				time.Sleep(d)
				r.outage.Store(false)
			}()
		case 2: // drain and replace
			t.Logf("%s drains and is replaced", id)
			mu.Lock()
			delete(reps, id)
			mu.Unlock()
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			if err := r.m.Drain(dctx); err != nil {
				t.Logf("drain %s: %v", id, err)
			}
			dcancel()
			r.cancel()
			r.m.Close()
			start()
		}
	}
	churn.Wait()
	waitFor(t, 15*time.Second, "every session connected after the chaos", func() bool { n, _ := s.count(); return n == len(ids) })
	mu.Lock()
	var any *Manager
	for _, r := range reps {
		any = r.m
	}
	mu.Unlock()
	var takeovers int
	if err := any.pool.QueryRow(ctx, `SELECT coalesce(sum(epoch - 1), 0) FROM serve_leases`).Scan(&takeovers); err != nil {
		t.Fatal(err)
	}
	nlog, err := CheckWriteLog(ctx, any.pool)
	if err != nil {
		t.Error(err)
	}
	var fenced int64
	mu.Lock()
	for _, r := range reps {
		fenced += r.m.Stats().Fenced
	}
	mu.Unlock()
	t.Logf("%d writes (%d in the log when audited), %d re-acquisitions, %d refused writes on the surviving replicas", writes.Load(), nlog, takeovers, fenced)
	if takeovers == 0 {
		t.Error("the chaos moved no session")
	}
	cancel()
	s.wg.Wait()
	mu.Lock()
	for _, r := range reps {
		r.m.Close()
	}
	mu.Unlock()
	s.check(t)
}
