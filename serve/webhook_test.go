package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a webhook endpoint that fails its first failFirst requests
// and everything while down, and records what it accepted.
type receiver struct {
	secret    string
	failFirst int64
	calls     atomic.Int64
	down      atomic.Bool
	mu        sync.Mutex
	got       map[string]int // event id -> deliveries accepted
	bad       []string       // problems seen
	srv       *httptest.Server
}

func newReceiver(t *testing.T, secret string, failFirst int64) *receiver {
	r := &receiver{secret: secret, failFirst: failFirst, got: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		body, _ := io.ReadAll(req.Body)
		if r.down.Load() || n <= r.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if !VerifySignature(r.secret, body, req.Header.Get("X-Walink-Signature")) {
			r.bad = append(r.bad, "bad signature on "+string(body))
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			r.bad = append(r.bad, "not JSON: "+string(body))
		}
		id := req.Header.Get("X-Walink-Event-Id")
		if id == "" || ev["event_id"] != id {
			r.bad = append(r.bad, "event id header "+id+" vs body "+string(body))
		}
		r.got[id]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id := range r.got {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// TestWebhooksAtLeastOnce: a receiver that fails its first attempts and
// is down across a restart of the service still gets every event of the
// session, with valid signatures; after dedup by id, exactly once each.
// A global webhook that always fails and one that hangs hold up nothing.
func TestWebhooksAtLeastOnce(t *testing.T) {
	rc := newReceiver(t, "session-secret", 3)
	failing := newReceiver(t, "global-secret", 1<<40)
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(hang)
	e := newEnv(t, envOpts{mutate: func(c *Config) {
		c.Webhook = WebhookConfig{URL: failing.srv.URL, Secret: "global-secret"}
		c.WebhookTimeout = 30 * time.Second
	}})
	// A second session whose webhook hangs.
	e.must(201, "POST", "/v1/sessions", map[string]any{"start": false, "webhook": map[string]any{"url": hanging.URL}})
	v := e.must(201, "POST", "/v1/sessions", map[string]any{"name": "hooked",
		"webhook": map[string]any{"url": rc.srv.URL + "/hook", "secret": "session-secret"}})
	id := v["id"].(string)
	if wh := v["webhook"].(map[string]any); wh["url"] != rc.srv.URL+"/hook" || wh["secret"] != nil {
		t.Fatalf("webhook view %v (a given secret is never echoed)", wh)
	}
	e.scan(id, "15550007777")
	e.waitStatus(id, StatusConnected, 20*time.Second)

	// Down across a restart: the events of the stop and of the reconnect
	// wait in the outbox.
	rc.down.Store(true)
	e.must(200, "POST", "/v1/sessions/"+id+"/stop", nil)
	e.svc.CloseStreams()
	e.http.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := e.svc.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "left for the next start") {
		t.Fatalf("shutdown with the receiver down: %v", err)
	}
	cancel()
	e.db.Close()
	e.st.Close()
	e.svc = nil
	e.start()
	e.must(200, "POST", "/v1/sessions/"+id+"/start", nil)
	e.waitStatus(id, StatusConnected, 20*time.Second)
	rc.down.Store(false)

	// Every event of the session, from the history.
	all := e.stream("/v1/sessions/"+id+"/events", "0")
	var want []string
	connected := 0
	for connected < 2 {
		ev := all.next(t, 5*time.Second, func(sseEvent) bool { return true })
		want = append(want, ev.Data["event_id"].(string))
		if ev.Name == "status" && ev.Data["status"] == "connected" {
			connected++
		}
	}
	sort.Strings(want)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Join(rc.ids(), ",") != strings.Join(want, ",") {
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %v\nwant %v", rc.ids(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("bad deliveries: %v", rc.bad)
	}
	if rc.calls.Load() <= int64(len(want)) {
		t.Fatalf("%d calls for %d events: the failures were not retried?", rc.calls.Load(), len(want))
	}
	if failing.calls.Load() < 2 {
		t.Fatalf("the failing global webhook was tried %d times", failing.calls.Load())
	}
	_, _, m := e.do("GET", "/metrics", nil)
	for _, s := range []string{`walink_webhook_deliveries_total{result="delivered"}`, `walink_webhook_deliveries_total{result="failed"}`,
		`walink_sessions{status="connected"} 1`,
		"walink_handshake_duration_seconds_count", "walink_store_duration_seconds_count"} {
		if !strings.Contains(string(m), s) {
			t.Errorf("metrics lack %s", s)
		}
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"event":"connected"}`)
	sig := Sign("k", body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 || !VerifySignature("k", body, sig) {
		t.Fatal(sig)
	}
	if VerifySignature("k2", body, sig) || VerifySignature("k", append(body, ' '), sig) {
		t.Fatal("signature accepted for another key or body")
	}
}
