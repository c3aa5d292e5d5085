package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/walinkdev/walink/watest"
)

// TestOutageReconnectsBounded: N linked sessions, then every connection
// is cut at once (an outage): the reconnects the library makes by itself
// go through the service's dial gate, so the local WhatsApp never sees
// more than StartConcurrency handshakes in flight, and every session is
// connected again. WALINK_SERVE_OUTAGE_N sets N (default 12).
func TestOutageReconnectsBounded(t *testing.T) {
	n := 12
	if v, err := strconv.Atoi(os.Getenv("WALINK_SERVE_OUTAGE_N")); err == nil && v > 0 {
		n = v
	}
	const conc = 3
	srv := startSim(t, watest.Config{})
	proxy := newCountingProxy(t, srv)
	e := newEnv(t, envOpts{srv: srv, serverURL: proxy.url(), mutate: func(c *Config) {
		c.StartConcurrency = conc
	}})
	ids := e.linkQRMany(n, conc, func(i int) string { return fmt.Sprintf("1555%07d", 200000+i) })
	if t.Failed() {
		return
	}
	proxy.reset()
	before := proxy.accepted.Load()
	if cut := proxy.dropAll(); cut != n {
		t.Fatalf("cut %d connections, want %d", cut, n)
	}
	// A status may still read connected before its client noticed the
	// cut: first wait for every session's new connection, then for the
	// statuses.
	limit := time.Now().Add(time.Duration(n)*200*time.Millisecond + 30*time.Second)
	for proxy.accepted.Load()-before < int64(n) {
		if time.Now().After(limit) {
			t.Fatalf("%d connections after the outage, want >= %d", proxy.accepted.Load()-before, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range ids {
		e.waitStatus(id, StatusConnected, time.Until(limit)+time.Second)
	}
	got := proxy.accepted.Load() - before
	t.Logf("%d sessions reconnected after an outage; %d connections; at most %d handshakes in flight (limit %d)",
		n, got, proxy.maxIn.Load(), conc)
	if got < int64(n) {
		t.Fatalf("%d connections after the outage, want >= %d", got, n)
	}
	if m := proxy.maxIn.Load(); m > conc {
		t.Fatalf("%d handshakes in flight at once, limit %d", m, conc)
	}
	if m := proxy.maxIn.Load(); n >= 2*conc && m < 2 {
		t.Fatalf("at most %d handshake in flight: the measurement sees nothing", m)
	}
}

// TestRestartMidLink: a session that was linking when the service stopped
// (showing a QR, or with a pair code outstanding) starts linking again on
// start: status scan_qr with a fresh QR (the old one, and any code, died
// with the connection), which links; the unpaired device of the first
// attempt is not left in the store. The pair code's expires_at is the
// library's (180 s after it was issued), and the linked platform survives
// a further restart (kept by the service, not read from the store).
func TestRestartMidLink(t *testing.T) {
	for _, mode := range []string{"qr", "code"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			v := e.must(201, "POST", "/v1/sessions", map[string]any{"name": "mid-link"})
			id := v["id"].(string)
			e.waitStatus(id, StatusScanQR, 20*time.Second)
			q1 := e.must(200, "GET", "/v1/sessions/"+id+"/qr?format=json", nil)["qr"].(string)
			if mode == "code" {
				t0 := time.Now()
				pc := e.must(200, "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "15550003333"})
				t1 := time.Now()
				exp, err := time.Parse(time.RFC3339Nano, pc["expires_at"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if exp.Before(t0.Add(180*time.Second-time.Millisecond)) || exp.After(t1.Add(180*time.Second+time.Millisecond)) {
					t.Fatalf("expires_at %v, asked between %v and %v: want 180 s later", exp, t0, t1)
				}
				e.waitStatus(id, StatusPairCode, 10*time.Second)
			}
			e.restart()
			m := e.waitStatus(id, StatusScanQR, 20*time.Second)
			if m["pair_code"] != nil {
				t.Fatalf("a pair code survived the restart: %v", m["pair_code"])
			}
			q2 := e.must(200, "GET", "/v1/sessions/"+id+"/qr?format=json", nil)["qr"].(string)
			if q2 == q1 {
				t.Fatal("the QR of before the restart is shown again")
			}
			e.scan(id, "15550003333")
			m = e.waitStatus(id, StatusConnected, 20*time.Second)
			if m["platform"] == nil || m["platform"] == "" {
				t.Fatalf("no platform after linking: %v", m)
			}
			devs, err := e.st.Devices(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(devs) != 1 {
				t.Fatalf("%d devices in the store, want the linked one only", len(devs))
			}
			e.restart()
			m2 := e.waitStatus(id, StatusConnected, 20*time.Second)
			if m2["platform"] != m["platform"] {
				t.Fatalf("platform %v after restart, was %v", m2["platform"], m["platform"])
			}
			trs, _ := json.Marshal(m2["transitions"])
			t.Logf("transitions: %s", trs)
		})
	}
}
