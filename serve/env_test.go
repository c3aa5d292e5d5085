package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	wakeys "github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/store"
	"github.com/walinkdev/walink/store/postgres"
	"github.com/walinkdev/walink/store/sqlite"
	"github.com/walinkdev/walink/watest"
)

const testKey = "test-api-key-0123456789"

// env is one service against the local WhatsApp, over real loopback
// sockets: the service's HTTP server, its store and database, and an
// HTTP client that validates every API response against openapi.json.
type env struct {
	t      testing.TB
	srv    *watest.Server
	st     store.Store
	db     *DB
	svc    *Service
	http   *httptest.Server
	client *http.Client
	cfg    Config
	dbOpen func() (store.Store, *DB) // reopens the same database (restart)
	opts   envOpts
}

type envOpts struct {
	postgres  bool
	mutate    func(*Config)
	scenario  func(*watest.Scenario)
	srv       *watest.Server
	serverURL string
	external  bool // the local WhatsApp runs elsewhere (serverURL, mutate sets the root)
	// wrapStore, when set, wraps the store the service is given (e.st
	// stays the plain one).
	wrapStore func(store.Store) store.Store
	// logoutWait, when set, replaces how long DELETE waits to log out.
	logoutWait time.Duration
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	srv := o.srv
	if srv == nil && !o.external {
		sc := watest.DefaultScenario()
		if o.scenario != nil {
			o.scenario(&sc)
		}
		var err error
		srv, err = watest.Start(ctx, watest.Config{Scenario: &sc})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
	}
	e := &env{t: t, srv: srv, opts: o}
	if o.postgres {
		e.dbOpen = postgresOpener(t)
	} else {
		path := filepath.Join(t.TempDir(), "walink.db")
		e.dbOpen = func() (store.Store, *DB) {
			st, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			db, err := OpenSQLite(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			return st, db
		}
	}
	surl := ""
	if srv != nil {
		surl = srv.URL()
	}
	if o.serverURL != "" {
		surl = o.serverURL
	}
	e.cfg = Config{
		Client: walink.Config{ServerURL: surl, ServerRoot: rootOf(srv),
			Reconnect: walink.ReconnectPolicy{MinDelay: 50 * time.Millisecond, MaxDelay: time.Second},
			// Fewer pre-keys: linking is what the tests exercise, not the upload.
			PreKeyCount: 30},
		APIKeys:           []KeyHash{HashAPIKey(testKey)},
		WebhookMinBackoff: 20 * time.Millisecond, WebhookMaxBackoff: 200 * time.Millisecond,
		StartJitter: 20 * time.Millisecond,
	}
	if o.mutate != nil {
		o.mutate(&e.cfg)
	}
	e.start()
	return e
}

// start runs a service on the env's database (again, after stop).
func (e *env) start() {
	t := e.t
	t.Helper()
	e.st, e.db = e.dbOpen()
	cfg := e.cfg
	cfg.Store, cfg.DB = e.st, e.db
	if e.opts.wrapStore != nil {
		cfg.Store = e.opts.wrapStore(e.st)
	}
	svc, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e.opts.logoutWait > 0 {
		svc.logoutWait = e.opts.logoutWait
	}
	svc.Start()
	e.svc = svc
	e.http = httptest.NewServer(svc.Handler())
	e.client = &http.Client{Transport: &validator{t: t, base: http.DefaultTransport, seen: map[string]bool{}}}
	t.Cleanup(e.stop)
}

// stop is what SIGTERM does: end streams, stop the HTTP server, close
// every connection, flush the outbox. Idempotent.
func (e *env) stop() {
	if e.svc == nil {
		return
	}
	e.svc.CloseStreams()
	e.http.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	e.svc.Shutdown(ctx)
	e.db.Close()
	e.st.Close()
	e.svc = nil
}

func (e *env) restart() {
	e.stop()
	e.start()
}

// pgSchema makes a schema of its own on WALINK_TEST_POSTGRES_DSN and
// returns the DSN that uses it.
func pgSchema(t testing.TB) string {
	dsn := os.Getenv("WALINK_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("WALINK_TEST_POSTGRES_DSN not set")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("serve_test_%d", time.Now().UnixNano())
	admin, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// postgresOpener gives a schema of its own on WALINK_TEST_POSTGRES_DSN.
func postgresOpener(t testing.TB) func() (store.Store, *DB) {
	ctx := context.Background()
	sdsn := pgSchema(t)
	return func() (store.Store, *DB) {
		st, err := postgres.Open(ctx, sdsn)
		if err != nil {
			t.Fatal(err)
		}
		db, err := OpenPostgres(ctx, sdsn)
		if err != nil {
			t.Fatal(err)
		}
		return st, db
	}
}

// do sends a request with the API key and returns status, headers, body.
func (e *env) do(method, path string, body any, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		case []byte:
			rd = bytes.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
	}
	req, _ := http.NewRequest(method, e.http.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// must sends a request and fails unless it answers want; it decodes the
// JSON answer into a map.
func (e *env) must(want int, method, path string, body any, hdr ...string) map[string]any {
	e.t.Helper()
	code, _, b := e.do(method, path, body, hdr...)
	if code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	var m map[string]any
	if len(b) > 0 {
		json.Unmarshal(b, &m)
	}
	return m
}

// problem asserts a problem+json answer of the given status and type.
func (e *env) problem(status int, typ, method, path string, body any, hdr ...string) map[string]any {
	e.t.Helper()
	code, h, b := e.do(method, path, body, hdr...)
	if code != status || h.Get("Content-Type") != "application/problem+json" {
		e.t.Fatalf("%s %s: %d %s %s, want %d problem", method, path, code, h.Get("Content-Type"), b, status)
	}
	var p map[string]any
	json.Unmarshal(b, &p)
	if p["type"] != "urn:walink:problem:"+typ || int(p["status"].(float64)) != status {
		e.t.Fatalf("%s %s: problem %s, want type %s", method, path, b, typ)
	}
	return p
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	ID   string
	Name string
	Data map[string]any
}

// stream is an open SSE connection.
type stream struct {
	resp   *http.Response
	events chan sseEvent
	done   chan struct{}
}

func (e *env) stream(path, lastID string) *stream {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("stream %s: %d", path, resp.StatusCode)
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 1024), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			l := sc.Text()
			switch {
			case l == "":
				if ev.Name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(l, "id: "):
				ev.ID = l[4:]
			case strings.HasPrefix(l, "event: "):
				ev.Name = l[7:]
			case strings.HasPrefix(l, "data: "):
				json.Unmarshal([]byte(l[6:]), &ev.Data)
			}
		}
	}()
	e.t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.resp.Body.Close()
	<-s.done
}

// next returns the next event satisfying match, failing after d.
func (s *stream) next(t testing.TB, d time.Duration, match func(sseEvent) bool) sseEvent {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no matching event within %v", d)
		}
	}
}

func isStatus(id string, st Status) func(sseEvent) bool {
	return func(ev sseEvent) bool {
		return ev.Name == "status" && ev.Data["session_id"] == id && ev.Data["status"] == string(st)
	}
}

// waitStatus polls the API until the session has status st.
func (e *env) waitStatus(id string, st Status, d time.Duration) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, _, b := e.do("GET", "/v1/sessions/"+id, nil)
		var m map[string]any
		json.Unmarshal(b, &m)
		if code == 200 && m["status"] == string(st) {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("session %s: %s, want status %s", id, b, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// linkQR creates a session and links it by QR with the given phone.
func (e *env) linkQR(phone string) string {
	e.t.Helper()
	v := e.must(201, "POST", "/v1/sessions", map[string]any{"name": "acct " + phone})
	id := v["id"].(string)
	e.scan(id, phone)
	e.waitStatus(id, StatusConnected, 20*time.Second)
	return id
}

// linkQRMany links n accounts by QR, conc at a time, account i with
// phone(i), and returns their session ids in that order.
func (e *env) linkQRMany(n, conc int, phone func(i int) string) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ids[i] = e.linkQR(phone(i))
		}()
	}
	wg.Wait()
	return ids
}

// startSim starts a local WhatsApp with the default scenario but no QR
// rotation (tests linking many accounts at once would otherwise scan
// rotated codes), closed when the test ends. cfg.Scenario is set here.
func startSim(t *testing.T, cfg watest.Config) *watest.Server {
	t.Helper()
	sc := watest.DefaultScenario()
	sc.QRRefresh = false
	cfg.Scenario = &sc
	srv, err := watest.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// scan waits for the session's QR and has phone scan it (again after a
// rotation, as a camera pointed at the screen would).
func (e *env) scan(id, phone string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	last := ""
	for ctx.Err() == nil {
		e.waitStatus(id, StatusScanQR, 20*time.Second)
		code, _, b := e.do("GET", "/v1/sessions/"+id+"/qr", nil, "Accept", "application/json")
		var q QRView
		json.Unmarshal(b, &q)
		if code != 200 || q.QR == last {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		last = q.QR
		_, err := e.srv.Phone(phone).ScanQR(ctx, q.QR)
		if err == nil {
			return
		}
		if !errors.Is(err, watest.ErrRescan) && !errors.Is(err, watest.ErrStaleQR) {
			e.t.Fatalf("scan: %v", err)
		}
	}
	e.t.Fatal("scan: timed out")
}

func rootOf(srv *watest.Server) wakeys.PublicKey {
	if srv == nil {
		return wakeys.PublicKey{}
	}
	return srv.RootKey()
}
