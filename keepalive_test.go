package walink_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walinkdev/walink"
)

// TestKeepaliveGivesUp: with the real timetable (a ping every 20–30 s,
// 10 s to answer, 3 min to give up), answered pings keep the connection;
// unanswered ones are retried until they have failed for 3 minutes, then
// the client drops the connection and reconnects. Close with a ping
// outstanding leaves no goroutine behind.
func TestKeepaliveGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newPipeFakeServer(t)
		st, _ := pairedStore(t)
		cfg := fs.config()
		cfg.Reconnect = walink.ReconnectPolicy{MinDelay: time.Second, MaxDelay: 2 * time.Second}
		cli, rec := newClient(t, st, cfg)
		if err := cli.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		fc := fs.accept()
		fc.login()
		from := 0
		waitFor[walink.Connected](t, rec, &from, time.Minute)

		// Answered: the connection outlives several give-up periods.
		start := time.Now()
		var last time.Time
		for time.Since(start) < 10*time.Minute {
			p := fc.next("ping", isPing)
			if gap := time.Since(last); !last.IsZero() && (gap < 20*time.Second || gap > 30*time.Second) {
				t.Fatalf("ping %v after the last", gap)
			}
			last = time.Now()
			fc.send(iqResult(p.Attr("id")))
		}
		if !cli.IsConnected() {
			t.Fatal("disconnected with answered pings")
		}

		// Unanswered: pings go on until the give-up, then a reconnect.
		lastOK := time.Now()
		unanswered := 0
		for n := range fc.in {
			if isPing(n) {
				unanswered++
			}
		}
		if took := time.Since(lastOK); took < 3*time.Minute || took > 3*time.Minute+40*time.Second || unanswered < 5 {
			t.Fatalf("dropped %v after the last answer, %d unanswered pings", took, unanswered)
		}
		waitFor[walink.Disconnected](t, rec, &from, time.Minute)
		fc2 := fs.accept()
		fc2.login()
		waitFor[walink.Connected](t, rec, &from, time.Minute)

		// Close with a ping outstanding joins every goroutine at once.
		fc2.next("ping", isPing)
		cli.Close()
		if left := ownGoroutines("walink.(*"); left != "" {
			t.Fatalf("goroutines left after Close:\n%s", left)
		}
	})
}
