package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSimLoad runs `walink sim load` against a `walink sim` process with a
// small node log spilling to a file: every companion links, the report has
// ordered latency percentiles, the phones list the devices, the in-memory
// log holds only --log-size events and the file holds them all.
func TestSimLoad(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "events.jsonl")
	info := startSim(t.Context(), t, "--log", logPath, "--log-size", "30", "--first-stanza-delay-ms", "0")
	out, stderr, code := runWalink(t, "sim", "load", "--server", info.WSURL, "--server-root", info.RootPublicKey,
		"--devices", "3", "--online", "2", "--parallel", "2", "--prekeys", "5", "--first-number", "15558000000",
		"--duration", "200ms", "--json")
	if code != 0 {
		t.Fatalf("sim load: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	p50, p90, p99 := rep["p50_ms"].(float64), rep["p90_ms"].(float64), rep["p99_ms"].(float64)
	if rep["linked"] != float64(3) || rep["failed"] != float64(0) || rep["online"] != float64(2) || p50 <= 0 || p50 > p90 || p90 > p99 {
		t.Fatalf("report %v", rep)
	}
	for _, n := range []string{"15558000000", "15558000002"} {
		resp, err := http.Get(info.ControlURL + "/phones/" + n + "/devices")
		if err != nil {
			t.Fatal(err)
		}
		var devs struct{ Devices []map[string]any }
		json.NewDecoder(resp.Body).Decode(&devs)
		resp.Body.Close()
		if len(devs.Devices) != 1 {
			t.Fatalf("phone %s: %v", n, devs)
		}
	}
	resp, err := http.Get(info.ControlURL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	inMemory := 0
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		inMemory++
	}
	resp.Body.Close()
	if inMemory != 30 {
		t.Fatalf("GET /events: %d events, want the last 30", inMemory)
	}
	// The file copy is flushed within a second of an event: wait for it.
	want := `"note":"linked 15558000000:1@s.whatsapp.net"`
	var b []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err = os.ReadFile(logPath); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), want) && strings.Count(string(b), "\n") > 30 {
			break
		}
	}
	if lines := strings.Count(string(b), "\n"); lines <= 30 || !strings.Contains(string(b), want) {
		t.Fatalf("event file: %d lines, want > 30 with %s", lines, want)
	}
	if _, stderr, code := runWalink(t, "sim", "load", "--server", info.WSURL); code != exitUsage {
		t.Fatalf("sim load without --server-root: exit %d (%s)", code, stderr)
	}
}
