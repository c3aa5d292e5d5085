package serve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/postgres"
	"github.com/walinkdev/walink/watest"
)

// testLeases hands out sessions to replicas in memory, the way a lease
// manager would, with a rule of which replica may take which session: it
// stands in for serve/lease in the tests of this package (which test the
// events, forwarding and outbox across replicas, not the leases).
type testLeases struct {
	mu     sync.Mutex
	holder map[string]string // session -> replica
	urls   map[string]string // replica -> advertise URL
	allow  func(replica, session string) bool
}

type testOwner struct {
	l  *testLeases
	id string
}

type testLease struct {
	l         *testLeases
	id, owner string
	once      sync.Once
}

func (o testOwner) Acquire(ctx context.Context, id string) (Lease, error) {
	for {
		o.l.mu.Lock()
		if o.l.holder[id] == "" && (o.l.allow == nil || o.l.allow(o.id, id)) {
			o.l.holder[id] = o.id
			o.l.mu.Unlock()
			return &testLease{l: o.l, id: id, owner: o.id}, nil
		}
		o.l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (o testOwner) Owner(ctx context.Context, id string) (string, string, bool, error) {
	o.l.mu.Lock()
	defer o.l.mu.Unlock()
	h := o.l.holder[id]
	return h, o.l.urls[h], h != "", nil
}

func (l *testLease) Lost() <-chan struct{} { return nil }
func (l *testLease) Release() {
	l.once.Do(func() {
		l.l.mu.Lock()
		if l.l.holder[l.id] == l.owner {
			delete(l.l.holder, l.id)
		}
		l.l.mu.Unlock()
	})
}

// newReplicas runs n services on one schema and one local WhatsApp, each
// with its own HTTP server, sharing leases.
func newReplicas(t testing.TB, n int, leases *testLeases, mutate func(*Config)) []*env {
	t.Helper()
	ctx := context.Background()
	srv, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dsn := pgSchema(t)
	leases.holder, leases.urls = map[string]string{}, map[string]string{}
	var out []*env
	for i := range n {
		id := string(rune('a' + i))
		// The listener first: the advertise URL goes into the config.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		adv := "http://" + ln.Addr().String()
		leases.mu.Lock()
		leases.urls[id] = adv
		leases.mu.Unlock()
		e := &env{t: t, srv: srv}
		e.dbOpen = func() (store.Store, *DB) {
			st, err := postgres.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			db, err := OpenPostgres(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			return st, db
		}
		e.st, e.db = e.dbOpen()
		owner := testOwner{l: leases, id: id}
		e.cfg = Config{Store: e.st, DB: e.db,
			Client:            newEnvClient(srv),
			APIKeys:           []KeyHash{HashAPIKey(testKey)},
			WebhookMinBackoff: 20 * time.Millisecond, WebhookMaxBackoff: 200 * time.Millisecond,
			StartJitter: 20 * time.Millisecond, Owner: owner, Sim: WatestSim{Server: srv},
			Cluster: &Cluster{ReplicaID: id, AdvertiseURL: adv, DSN: dsn, Locator: owner, CatchUpEvery: time.Second}}
		if mutate != nil {
			mutate(&e.cfg)
		}
		svc, err := New(ctx, e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		svc.Start()
		e.svc = svc
		e.http = httptest.NewUnstartedServer(svc.Handler())
		e.http.Listener.Close()
		e.http.Listener = ln
		e.http.Start()
		e.client = &http.Client{Transport: &validator{t: t, base: http.DefaultTransport, seen: map[string]bool{}}}
		t.Cleanup(e.stop)
		out = append(out, e)
	}
	return out
}

// TestReplicasLinkThroughAnother: a session created through replica B is
// held by replica A (the only one allowed to take it); through B the
// session's QR is shown (forwarded to A), the phone scans it, and B's API,
// B's SSE stream and the webhook (sent once, by one replica) all report
// the link.
func TestReplicasLinkThroughAnother(t *testing.T) {
	leases := &testLeases{allow: func(replica, _ string) bool { return replica == "a" }}
	rc := newReceiver(t, "global-secret", 0)
	rs := newReplicas(t, 2, leases, func(c *Config) {
		c.Webhook = WebhookConfig{URL: rc.srv.URL, Secret: "global-secret"}
	})
	a, b := rs[0], rs[1]
	evs := b.stream("/v1/events", "")
	v := b.must(201, "POST", "/v1/sessions", map[string]any{"name": "via b"})
	id := v["id"].(string)
	evs.next(t, 10*time.Second, func(ev sseEvent) bool { return ev.Name == "session_created" && ev.Data["session_id"] == id })
	// The QR code reaches B's stream from A, through NOTIFY.
	qr := evs.next(t, 20*time.Second, func(ev sseEvent) bool { return ev.Name == "pairing_qr_code" && ev.Data["session_id"] == id })
	if qr.Data["code"] == "" {
		t.Fatalf("qr event %v", qr)
	}
	leases.mu.Lock()
	holder := leases.holder[id]
	leases.mu.Unlock()
	if holder != "a" || a.svc.get(id) == nil {
		t.Fatalf("session held by %q", holder)
	}
	// Through B: the QR (forwarded to A) is scanned by the phone.
	b.scan(id, "15550002323")
	b.waitStatus(id, StatusConnected, 20*time.Second)
	a.waitStatus(id, StatusConnected, 5*time.Second)
	evs.next(t, 10*time.Second, isStatus(id, StatusConnected))
	png, h, _ := b.do("GET", "/v1/sessions/"+id+"/qr", nil, "Accept", "image/png")
	if png != http.StatusConflict || h.Get("X-Walink-Replica") != "a" {
		t.Fatalf("qr after link through b: %d, replica %q", png, h.Get("X-Walink-Replica"))
	}
	// A stop through B goes to A, which closes the connection.
	b.must(200, "POST", "/v1/sessions/"+id+"/stop", nil)
	a.waitStatus(id, StatusDisconnected, 10*time.Second)
	if s := a.svc.get(id); s == nil || func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.cli != nil }() {
		t.Fatal("a still holds the stopped session")
	}
	// Every event went out once in all, not once per replica.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := a.db.outboxLen(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d rows", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("receiver: %v", rc.bad)
	}
	var dups []string
	for id, n := range rc.got {
		if n != 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", id, n))
		}
	}
	if len(dups) > 0 || len(rc.got) < 6 {
		t.Fatalf("deliveries: %d events, duplicates %v", len(rc.got), dups)
	}
	if !strings.HasPrefix(id, "s_") {
		t.Fatal(id)
	}
}

// newEnvClient is newEnv's client template.
func newEnvClient(srv *watest.Server) walink.Config {
	return walink.Config{ServerURL: srv.URL(), ServerRoot: srv.RootKey(),
		Reconnect:   walink.ReconnectPolicy{MinDelay: 50 * time.Millisecond, MaxDelay: time.Second},
		PreKeyCount: 30}
}

// TestReplicasInternalAuth: a forwarded request is accepted only with a
// valid signature of its method, path and body under the shared secret,
// and a caller cannot claim to be a forwarding replica.
func TestReplicasInternalAuth(t *testing.T) {
	leases := &testLeases{allow: func(replica, _ string) bool { return replica == "a" }}
	rs := newReplicas(t, 2, leases, nil)
	a, b := rs[0], rs[1]
	id := a.must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	// B knows it at once, from the table, before its event arrives.
	b.must(200, "GET", "/v1/sessions/"+id, nil)
	send := func(method, path, body string, hdr map[string]string) int {
		req, _ := http.NewRequest(method, a.http.URL+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := a.svc.cl
	ts := time.Now().Unix()
	good := strconv.FormatInt(ts, 10) + "." + c.internalMAC("GET", "/v1/sessions/"+id, ts, nil)
	if code := send("GET", "/v1/sessions/"+id, "", map[string]string{internalHeader: good, forwardedBy: "b"}); code != 200 {
		t.Fatalf("signed forwarded request: %d", code)
	}
	for name, hdr := range map[string]map[string]string{
		"other path":   {internalHeader: good},
		"stale":        {internalHeader: "1000." + c.internalMAC("GET", "/v1/sessions", 1000, nil)},
		"garbage":      {internalHeader: "x.y"},
		"claimed only": {forwardedBy: "b"},
	} {
		if code := send("GET", "/v1/sessions", "", hdr); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	// The body is signed too.
	bodyMAC := strconv.FormatInt(ts, 10) + "." + c.internalMAC("POST", "/v1/sessions/"+id+"/stop", ts, []byte(`{}`))
	if code := send("POST", "/v1/sessions/"+id+"/stop", `{"x":1}`, map[string]string{internalHeader: bodyMAC, "Content-Type": "application/json"}); code != http.StatusUnauthorized {
		t.Fatalf("changed body: %d, want 401", code)
	}
}
