package waversion

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/store"
)

func TestParseServiceWorker(t *testing.T) {
	for name, tc := range map[string]struct {
		script string
		want   uint32
	}{
		// The shape of the real script: JSON inside a JSON.parse string.
		"escaped json":       {`self.__swData=JSON.parse(/*BTDS*/"{\"dynamic_data\":{\"SiteData\":{\"server_revision\":1045368834,\"client_revision\":1045368834}}}");`, 1045368834},
		"plain json":         {`{"client_revision":1031080782,"x":1}`, 1031080782},
		"spaced":             {`"client_revision": 7`, 7},
		"first wins":         {`"client_revision":11 "client_revision":22`, 11},
		"skips a non-number": {`client_revision_note="n/a"; "client_revision":1045368834`, 1045368834},
		"max uint32":         {`"client_revision":4294967295`, 4294967295},
	} {
		v, err := ParseServiceWorker([]byte(tc.script))
		if err != nil || v != (engine.Version{2, 3000, tc.want}) {
			t.Errorf("%s: %v %v, want 2.3000.%d", name, v, err, tc.want)
		}
	}
	for name, script := range map[string]string{
		"empty":         "",
		"no key":        `{"server_revision":1045368834}`,
		"key at end":    `"client_revision`,
		"no digits":     `"client_revision":null`,
		"zero":          `"client_revision":0`,
		"too big":       `"client_revision":4294967296`,
		"far away":      `"client_revision"             :1045368834`,
		"eleven digits": `"client_revision":10453688340`,
	} {
		if v, err := ParseServiceWorker([]byte(script)); !errors.Is(err, ErrNoRevision) {
			t.Errorf("%s: %v %v, want ErrNoRevision", name, v, err)
		}
	}
}

func TestFetch(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("User-Agent") != UserAgent || r.Header.Get("Sec-Fetch-Site") != "none" || r.Method != http.MethodGet {
			http.Error(w, "not a browser", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/sw.js":
			w.Header().Set("Content-Type", "application/javascript")
			w.Write([]byte(`self.x=JSON.parse("{\"client_revision\":1045368999}");`))
		case "/empty.js":
			w.Write([]byte(`self.x=1;`))
		case "/slow.js":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := t.Context()

	f := &Fetcher{URL: srv.URL + "/sw.js", Client: srv.Client()}
	if v, err := f.Fetch(ctx); err != nil || v != (engine.Version{2, 3000, 1045368999}) {
		t.Fatalf("fetch: %v %v", v, err)
	}

	var fe *FetchError
	_, err := (&Fetcher{URL: srv.URL + "/missing.js?token=secret", Client: srv.Client()}).Fetch(ctx)
	if !errors.As(err, &fe) || fe.Status != 404 || !errors.Is(err, ErrFetch) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("404: %v", err)
	}
	if _, err := (&Fetcher{URL: srv.URL + "/empty.js", Client: srv.Client()}).Fetch(ctx); !errors.Is(err, ErrNoRevision) || !errors.Is(err, ErrFetch) {
		t.Fatalf("no revision: %v", err)
	}
	start := time.Now()
	if _, err := (&Fetcher{URL: srv.URL + "/slow.js", Client: srv.Client(), Timeout: 100 * time.Millisecond}).Fetch(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := (&Fetcher{URL: srv.URL + "/slow.js", Client: srv.Client()}).Fetch(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("timeout or cancellation did not end the fetch")
	}
}

// The fetch goes through the configured proxy: here a forward proxy that
// counts requests and relays them.
func TestFetchThroughProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`"client_revision":42`))
	}))
	defer origin.Close()
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		resp, err := http.DefaultTransport.RoundTrip(r.Clone(r.Context()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 1024)
		n, _ := resp.Body.Read(buf)
		w.Write(buf[:n])
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	client := NewHTTPClient(http.ProxyURL(pu), nil)
	defer client.CloseIdleConnections()
	v, err := (&Fetcher{URL: origin.URL + "/sw.js", Client: client}).Fetch(t.Context())
	if err != nil || v != (engine.Version{2, 3000, 42}) || proxied.Load() != 1 {
		t.Fatalf("via proxy: %v %v, %d proxied", v, err, proxied.Load())
	}
}

func FuzzParseServiceWorker(f *testing.F) {
	f.Add([]byte(`self.__swData=JSON.parse("{\"client_revision\":1045368834}");`))
	f.Add([]byte(`"client_revision":`))
	f.Fuzz(func(t *testing.T, script []byte) {
		v, err := ParseServiceWorker(script)
		if err != nil {
			if !errors.Is(err, ErrNoRevision) || v != (engine.Version{}) {
				t.Fatalf("%v %v", v, err)
			}
			return
		}
		if v[0] != 2 || v[1] != 3000 || v[2] == 0 || !strings.Contains(string(script), "client_revision") {
			t.Fatalf("accepted %v", v)
		}
	})
}

func TestRecover(t *testing.T) {
	var hits atomic.Int32
	rev := atomic.Int64{}
	rev.Store(1045369000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if rev.Load() == 0 {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `"client_revision":%d`, rev.Load())
	}))
	defer srv.Close()
	f := &Fetcher{URL: srv.URL, Client: srv.Client()}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	builtIn := engine.Version{2, 3000, 1045368834}
	d := &store.Device{}

	inUse := engine.ChooseVersion(engine.Version{}, builtIn, d, now)
	r := f.Recover(t.Context(), inUse, d, clock)
	if !r.Fetched || !r.Store || !r.Reconnect || r.Version != (engine.Version{2, 3000, 1045369000}) || !r.FetchedAt.Equal(now) || hits.Load() != 1 {
		t.Fatalf("first 405: %+v, %d fetches", r, hits.Load())
	}
	d.WebVersion, d.WebVersionFetchedAt = r.Version.String(), r.FetchedAt
	// Refused again within the minute: no fetch.
	now = now.Add(5 * time.Second)
	r = f.Recover(t.Context(), engine.ChooseVersion(engine.Version{}, builtIn, d, now), d, clock)
	if r.Fetched || r.Reconnect || r.GiveUp == "" || hits.Load() != 1 {
		t.Fatalf("second 405: %+v, %d fetches", r, hits.Load())
	}
	// An hour later with the script failing: one fetch, give up.
	now = now.Add(time.Hour)
	rev.Store(0)
	r = f.Recover(t.Context(), engine.ChooseVersion(engine.Version{}, builtIn, d, now), d, clock)
	if !r.Fetched || r.Store || r.Reconnect || !strings.Contains(r.GiveUp, "503") || hits.Load() != 2 {
		t.Fatalf("failed fetch: %+v, %d fetches", r, hits.Load())
	}
}
