//go:build !race

package watest

import (
	"context"
	"testing"
	"time"

	"github.com/walinkdev/walink/transport"
)

// TestConnectionAllocs bounds the allocations of one registration
// connection with both ends in this process, as bench's
// BenchmarkHandshake/where=watest runs it: dial, upgrade, handshake,
// pair-device read back, close, and the server's teardown (finished, or
// amortized over the runs). The client's side alone is 55
// (where=watest-child); 94 in all (111 before the server's connection
// state went into one allocation, the upgrade request was read without an
// http.Request, Park lost its closures and the pair-device was encoded
// and logged without copies). 98 leaves room for the runtime's own
// without letting most of that come back. (Not under the race detector,
// which makes sync.Pool drop items at random.)
func TestConnectionAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("connections over loopback")
	}
	sc := DefaultScenario()
	sc.FirstStanzaDelayMS, sc.LingerMS = 0, 0 // as bench's scenario
	s, err := Start(context.Background(), Config{Scenario: &sc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newCompanion(t)
	payload := c.registrationPayload()
	one := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, err := transport.Dial(ctx, s.URL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		tc, err := transport.Handshake(ctx, nc, transport.ClientConfig{NoiseKey: c.noise, RootKey: s.RootKey(), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tc.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		tc.Close()
	}
	one() // the poller, pools and maps warmed up
	allocs := testing.AllocsPerRun(100, one)
	t.Logf("%.1f allocations per connection, both ends", allocs)
	if allocs > 98 {
		t.Errorf("%.1f allocations per connection, both ends; want at most 98", allocs)
	}
}
