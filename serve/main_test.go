package serve

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when a goroutine of the service, the client
// or the local WhatsApp outlives the tests: every goroutine has an owner
// that Shutdown or Close stops.
func TestMain(m *testing.M) {
	if os.Getenv("WALINK_SERVE_WATEST_CHILD") == "1" {
		runWatestChild() // TestIdleScale's local WhatsApp
	}
	code := m.Run()
	if code == 0 {
		if left := leftGoroutines(5 * time.Second); left != "" {
			fmt.Fprintf(os.Stderr, "goroutines left after all tests:\n%s\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

var ownFrames = []string{"github.com/walinkdev/walink.", "github.com/walinkdev/walink/serve.", "github.com/walinkdev/walink/watest.", "github.com/walinkdev/walink/transport."}

func leftGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		var ours []string
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, "serve.TestMain") || strings.Contains(g, "serve.leftGoroutines") {
				continue
			}
			for _, f := range ownFrames {
				if strings.Contains(g, f) {
					ours = append(ours, g)
					break
				}
			}
		}
		if len(ours) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(ours, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
