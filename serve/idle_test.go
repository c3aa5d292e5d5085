package serve

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/watest"
)

// TestIdleMemory measures what an idle linked session costs the service
// process: N sessions are linked, the service restarts (so only the idle
// reconnected sessions remain), and the Go heap and RSS are compared with
// the same process before the restart's sessions connected. The local
// WhatsApp runs in this process too, so RSS is an upper bound. Run with
// WALINK_SERVE_IDLE_N=N (skipped otherwise: it is a measurement, not a
// check).
func TestIdleMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WALINK_SERVE_IDLE_N"))
	if n <= 0 {
		t.Skip("set WALINK_SERVE_IDLE_N")
	}
	srv := startSim(t, watest.Config{})
	e := newEnv(t, envOpts{srv: srv, mutate: func(c *Config) { c.StartConcurrency = 16 }})
	e.linkQRMany(n, 8, func(i int) string { return fmt.Sprintf("1556%07d", i) })
	e.stop()
	heap0, rss0 := memNow()
	e.start()
	for {
		l := e.must(200, "GET", "/v1/sessions", nil)["sessions"].([]any)
		c := 0
		for _, s := range l {
			if s.(map[string]any)["status"] == "connected" {
				c++
			}
		}
		if c == n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	heap1, rss1 := memNow()
	t.Logf("%d idle sessions: heap %+d KiB (%d B/session), RSS %+d KiB (%d B/session), goroutines %d",
		n, (heap1-heap0)/1024, (heap1-heap0)/int64(n), (rss1-rss0)/1024, (rss1-rss0)/int64(n), runtime.NumGoroutine())
}

func memNow() (heap, rss int64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			rss = v * 1024
		}
	}
	return int64(m.HeapInuse), rss
}
