package walink_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestMain fails the package when, after every test has closed its
// clients and servers, a goroutine of walink, its transport or the local
// WhatsApp is still running: the package-wide form of a goleak check,
// covering every Close in every test.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := ownGoroutines(ownFrames...); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left after all tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// ownFrames mark a goroutine as ours.
var ownFrames = []string{
	"github.com/walinkdev/walink.",
	"github.com/walinkdev/walink/transport.",
	"github.com/walinkdev/walink/watest.",
	"github.com/walinkdev/walink/store/",
	"github.com/coder/websocket.",
}

// ownGoroutines returns the stacks of the goroutines running any of
// frames. There is no grace period: Close joins every goroutine the
// client, its transport and the local WhatsApp start, so once it has
// returned none may be left.
func ownGoroutines(frames ...string) string {
	var ours []string
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.(*M).Run") || strings.Contains(g, "walink_test.TestMain") {
			continue // this goroutine
		}
		for _, f := range frames {
			if strings.Contains(g, f) {
				ours = append(ours, g)
				break
			}
		}
	}
	return strings.Join(ours, "\n\n")
}
