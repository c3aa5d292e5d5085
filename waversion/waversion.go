package waversion

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/walinkdev/walink/engine"
)

// Defaults.
const (
	// DefaultURL is WhatsApp Web's service-worker script.
	DefaultURL = "https://web.whatsapp.com/sw.js"
	// UserAgent is sent with the request: a desktop Chrome, as
	// whatsapp-rust sends (the script is served to browsers).
	UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	// DefaultTimeout bounds one fetch, connection and body included.
	DefaultTimeout = 20 * time.Second
	// MaxScript bounds the script read; the real one is a few hundred KiB.
	MaxScript = 8 << 20
)

var (
	// ErrNoRevision reports a script without a client_revision.
	ErrNoRevision = errors.New("waversion: no client_revision in the service-worker script")
	// ErrFetch is wrapped by every *FetchError.
	ErrFetch = errors.New("waversion: fetching the WhatsApp Web version failed")
)

// FetchError reports a failed fetch: the URL (without user info or query),
// the HTTP status when there was one (0 otherwise) and the cause.
type FetchError struct {
	URL    string
	Status int
	Err    error
}

func (e *FetchError) Error() string {
	msg := "waversion: fetch " + e.URL
	if e.Status != 0 {
		msg += ": http status " + strconv.Itoa(e.Status)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrFetch and the cause.
func (e *FetchError) Unwrap() []error { return []error{ErrFetch, e.Err} }

// Fetcher fetches the current version. The zero value fetches DefaultURL
// with http.DefaultClient's transport settings and DefaultTimeout.
type Fetcher struct {
	// URL of the service-worker script; "" means DefaultURL.
	URL string
	// Client makes the request; nil means NewHTTPClient(nil, nil) (no
	// proxy). Pass a client with the same proxy as the WebSocket.
	Client *http.Client
	// Timeout bounds the whole fetch; zero means DefaultTimeout. A
	// sooner ctx deadline wins.
	Timeout time.Duration
}

// Fetch downloads the script and returns the version it names. Failures
// are *FetchError (wrapping ErrFetch, and ErrNoRevision or the context's
// error when that is the cause).
func (f *Fetcher) Fetch(ctx context.Context) (engine.Version, error) {
	u := f.URL
	if u == "" {
		u = DefaultURL
	}
	fail := func(status int, err error) (engine.Version, error) {
		return engine.Version{}, &FetchError{URL: redact(u), Status: status, Err: err}
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(0, err)
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Sec-Fetch-Site", "none")
	req.Header.Set("Accept", "*/*")
	client := f.Client
	if client == nil {
		client = NewHTTPClient(nil, nil)
		defer client.CloseIdleConnections()
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return fail(resp.StatusCode, nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxScript+1))
	if err != nil {
		return fail(resp.StatusCode, err)
	}
	if len(body) > MaxScript {
		return fail(resp.StatusCode, fmt.Errorf("script larger than %d bytes", MaxScript))
	}
	v, err := ParseServiceWorker(body)
	if err != nil {
		return fail(resp.StatusCode, err)
	}
	return v, nil
}

// NewHTTPClient returns a client for Fetch with its own transport: proxy
// (nil: none) and tlsConfig (nil: system defaults) as transport.Dial takes
// them, so the fetch goes the way the WebSocket goes.
func NewHTTPClient(proxy func(*http.Request) (*url.URL, error), tlsConfig *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   20 * time.Second,
		ResponseHeaderTimeout: DefaultTimeout,
		ForceAttemptHTTP2:     true,
	}}
}

// revisionKey is what the script calls the revision.
var revisionKey = []byte("client_revision")

// maxGap bounds what may stand between the key and its number: quotes,
// escapes, a colon and spaces (`":`, `\":`, `": `), never another value.
const maxGap = 8

// ParseServiceWorker returns 2.3000.N for the first client_revision in
// script whose value N follows within a few punctuation bytes (the key
// appears as "client_revision":N inside JSON, or with escaped quotes
// inside a JSON string), N a decimal in 1..2^32-1. Otherwise ErrNoRevision.
func ParseServiceWorker(script []byte) (engine.Version, error) {
	rest := script
	for {
		i := bytes.Index(rest, revisionKey)
		if i < 0 {
			return engine.Version{}, ErrNoRevision
		}
		rest = rest[i+len(revisionKey):]
		j := 0
		for j < len(rest) && j <= maxGap && isGap(rest[j]) {
			j++
		}
		k := j
		for k < len(rest) && k-j < 11 && rest[k] >= '0' && rest[k] <= '9' {
			k++
		}
		if k == j || j > maxGap || (k < len(rest) && rest[k] >= '0' && rest[k] <= '9') {
			continue // no number here, or one too long for a revision
		}
		n, err := strconv.ParseUint(string(rest[j:k]), 10, 32)
		if err != nil || n == 0 {
			continue
		}
		return engine.Version{2, 3000, uint32(n)}, nil
	}
}

func isGap(c byte) bool {
	switch c {
	case '"', '\'', '\\', ':', ' ', '\t', '=':
		return true
	}
	return false
}

// redact drops user info and query from a URL for error messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad url)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
