package serve

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr          string
		tls, insecure bool
		ok            bool
	}{
		{"127.0.0.1:8080", false, false, true},
		{"[::1]:8080", false, false, true},
		{"localhost:8080", false, false, true},
		{"0.0.0.0:8080", false, false, false},
		{":8080", false, false, false},
		{"192.168.1.2:8080", false, false, false},
		{"0.0.0.0:8080", true, false, true},
		{"0.0.0.0:8080", false, true, true},
	} {
		err := CheckListen(c.addr, c.tls, c.insecure)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInsecureListen)) {
			t.Errorf("%s tls=%v insecure=%v: %v", c.addr, c.tls, c.insecure, err)
		}
	}
}

func TestParseAPIKeys(t *testing.T) {
	h := HashAPIKey("another-key-0123456789")
	keys, err := ParseAPIKeys(strings.NewReader("# keys\n\nfirst-key-0123456789\nsha256:" + hexOf(h[:]) + "\n"))
	if err != nil || len(keys) != 2 || keys[0] != HashAPIKey("first-key-0123456789") || keys[1] != h {
		t.Fatalf("%v %v", keys, err)
	}
	for _, bad := range []string{"short\n", "sha256:abcd\n"} {
		_, err := ParseAPIKeys(strings.NewReader(bad))
		if !errors.Is(err, ErrBadKeyFile) || strings.Contains(err.Error(), "short") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	a, _ := newAuth(keys)
	if !a.checkKey("first-key-0123456789") || !a.checkKey("another-key-0123456789") || a.checkKey("first-key-012345678") || a.checkKey("") {
		t.Fatal("checkKey")
	}
}

func hexOf(b []byte) string {
	const d = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(d[c>>4])
		s.WriteByte(d[c&15])
	}
	return s.String()
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPageSignIn: the page's sign-in sets an HttpOnly, SameSite=Strict
// cookie; with it the API answers safe methods, and unsafe ones only with
// the page's CSRF token; the login form itself is CSRF-protected; pages
// carry a strict CSP. Nothing secret reaches the log.
func TestPageSignIn(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, envOpts{mutate: func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: e.client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		r, err := c.Get(e.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return r, string(b)
	}
	r, body := get("/")
	csp := r.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP %q", csp)
	}
	if !strings.Contains(body, `name="key"`) {
		t.Fatalf("not the sign-in page: %s", body)
	}
	if r, _ := get("/v1/sessions"); r.StatusCode != 401 {
		t.Fatalf("API before sign-in: %d", r.StatusCode)
	}
	tok := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)[1]
	post := func(path string, form url.Values) *http.Response {
		r, err := c.PostForm(e.http.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r
	}
	if r := post("/ui/login", url.Values{"key": {testKey}, "csrf": {"forged"}}); r.StatusCode != 403 {
		t.Fatalf("login with a forged token: %d", r.StatusCode)
	}
	if r := post("/ui/login", url.Values{"key": {"wrong-key-0123456789"}, "csrf": {tok}}); r.StatusCode != 303 || r.Header.Get("Location") != "/?failed=1" {
		t.Fatalf("wrong key: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r = post("/ui/login", url.Values{"key": {testKey}, "csrf": {tok}})
	if r.StatusCode != 303 {
		t.Fatalf("sign in: %d", r.StatusCode)
	}
	sc := r.Header.Get("Set-Cookie")
	if !strings.Contains(sc, cookieName+"=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Fatalf("cookie %q", sc)
	}
	_, app := get("/")
	m := regexp.MustCompile(`name="walink-csrf" content="([^"]+)"`).FindStringSubmatch(app)
	if m == nil {
		t.Fatalf("no CSRF token in the app page")
	}
	if r, _ := get("/v1/sessions"); r.StatusCode != 200 {
		t.Fatalf("API with the cookie: %d", r.StatusCode)
	}
	req := func(tok, origin string) int {
		rq, _ := http.NewRequest("POST", e.http.URL+"/v1/sessions", strings.NewReader(`{"start":false}`))
		rq.Header.Set("Content-Type", "application/json")
		if tok != "" {
			rq.Header.Set(csrfHeader, tok)
		}
		if origin != "" {
			rq.Header.Set("Origin", origin)
		}
		r, err := c.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := req("", ""); code != 403 {
		t.Fatalf("unsafe request without CSRF token: %d", code)
	}
	if code := req("wrong", ""); code != 403 {
		t.Fatalf("wrong CSRF token: %d", code)
	}
	if code := req(m[1], "http://evil.example"); code != 403 {
		t.Fatalf("cross-origin: %d", code)
	}
	if code := req(m[1], e.http.URL); code != 201 {
		t.Fatalf("with the token: %d", code)
	}
	// Sign out clears the cookie.
	r = post("/ui/logout", url.Values{"csrf": {m[1]}})
	if r.StatusCode != 303 {
		t.Fatalf("sign out: %d", r.StatusCode)
	}
	if r, _ := get("/v1/sessions"); r.StatusCode != 401 {
		t.Fatalf("API after sign-out: %d", r.StatusCode)
	}
	// A session with a webhook secret, then check the log.
	e.must(201, "POST", "/v1/sessions", map[string]any{"start": false, "webhook": map[string]any{"url": "http://127.0.0.1:1/x?token=hush", "secret": "webhook-secret-value"}})
	for !strings.Contains(logs.String(), "webhook failed") {
		time.Sleep(10 * time.Millisecond)
	}
	for _, secret := range []string{testKey, "wrong-key-0123456789", "webhook-secret-value", "token=hush", tok, m[1]} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains a secret %q", secret)
		}
	}
}
