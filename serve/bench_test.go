package serve

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStatusRead: GET /v1/sessions/{id} over loopback with 1,000
// sessions and 50 open SSE subscribers; reports p50 and p99 latency. The
// healthz sub-benchmark, an unauthenticated constant answer on the same
// server, is the reference for the cost of loopback HTTP itself.
func BenchmarkStatusRead(b *testing.B) {
	e := newEnv(b, envOpts{})
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = e.must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	}
	for range 50 {
		e.stream("/v1/events", "")
	}
	c := &http.Client{} // no validation in the timed loop
	b.Run("healthz", func(b *testing.B) { benchGet(b, c, func(int) string { return e.http.URL + "/healthz" }) })
	b.Run("session", func(b *testing.B) {
		benchGet(b, c, func(i int) string { return e.http.URL + "/v1/sessions/" + ids[i%len(ids)] })
	})
}

func benchGet(b *testing.B, c *http.Client, url func(int) string) {
	lat := make([]time.Duration, 0, 1024)
	for i := 0; b.Loop(); i++ {
		req, _ := http.NewRequest("GET", url(i), nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkReplicaEventWrites: two replicas on PostgreSQL, 20 SSE
// streams on each, sessions created through both at once (a write
// transaction with one event each). Keep b.N under the test stream's
// buffer (1024 events): nobody reads the streams.
func BenchmarkReplicaEventWrites(b *testing.B) {
	leases := &testLeases{allow: func(string, string) bool { return false }}
	rs := newReplicas(b, 2, leases, nil)
	for _, e := range rs {
		for range 20 {
			e.stream("/v1/events", "")
		}
	}
	c := &http.Client{}
	b.SetParallelism(4)
	b.ResetTimer() // the replicas and streams are set up once per b.N
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := rs[n.Add(1)%2]
			req, _ := http.NewRequest("POST", e.http.URL+"/v1/sessions", strings.NewReader(`{"start":false}`))
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
