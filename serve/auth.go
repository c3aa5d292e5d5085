package serve

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// KeyHash is the SHA-256 of an API key: the service keeps only hashes.
type KeyHash [32]byte

// HashAPIKey hashes a key.
func HashAPIKey(key string) KeyHash { return sha256.Sum256([]byte(key)) }

// ErrBadKeyFile: a line of an API key file is neither a key (at least 16
// characters) nor "sha256:" and 64 hex digits.
var ErrBadKeyFile = errors.New("serve: bad API key file")

// ParseAPIKeys reads an API key file: one key per line, or its hash as
// "sha256:<64 hex>" (so the file need not hold the key itself); blank
// lines and lines starting with # are skipped.
func ParseAPIKeys(r io.Reader) ([]KeyHash, error) {
	var out []KeyHash
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if h, ok := strings.CutPrefix(l, "sha256:"); ok {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("%w: line %d: sha256: wants 64 hex digits", ErrBadKeyFile, line)
			}
			out = append(out, KeyHash(b))
			continue
		}
		if len(l) < 16 {
			// The key is not echoed: it is a secret even when too short.
			return nil, fmt.Errorf("%w: line %d: a key needs at least 16 characters", ErrBadKeyFile, line)
		}
		out = append(out, HashAPIKey(l))
	}
	return out, sc.Err()
}

// auth checks API keys (Authorization: Bearer, or X-Api-Key) and the
// page's signed session cookie. Cookies are signed with a key made at
// start-up, so a restart signs everyone out.
type auth struct {
	keys      []KeyHash
	cookieKey []byte
}

const (
	cookieName = "walink_session"
	cookieTTL  = 12 * time.Hour
	csrfHeader = "X-CSRF-Token"
)

func newAuth(keys []KeyHash) (*auth, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return &auth{keys: keys, cookieKey: k}, nil
}

// checkKey compares the key's hash with every accepted hash in constant
// time (no early exit: the time does not tell which key nearly matched).
func (a *auth) checkKey(key string) bool {
	if key == "" {
		return false
	}
	h := HashAPIKey(key)
	ok := 0
	for _, k := range a.keys {
		ok |= subtle.ConstantTimeCompare(h[:], k[:])
	}
	return ok == 1
}

func (a *auth) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, a.cookieKey)
	for _, p := range parts {
		m.Write(p)
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// newCookie returns a cookie value: expiry || nonce, then its MAC.
func (a *auth) newCookie(now time.Time) string {
	payload := make([]byte, 8+16)
	binary.BigEndian.PutUint64(payload, uint64(now.Add(cookieTTL).Unix()))
	rand.Read(payload[8:])
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(a.mac([]byte("cookie"), payload))
}

func (a *auth) validCookie(v string, now time.Time) bool {
	p, m, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || len(payload) != 24 {
		return false
	}
	if !hmac.Equal(sig, a.mac([]byte("cookie"), payload)) {
		return false
	}
	return now.Unix() < int64(binary.BigEndian.Uint64(payload))
}

// csrfToken is bound to the cookie: a page that can read it is the page
// the cookie was issued to.
func (a *auth) csrfToken(cookie string) string {
	return base64.RawURLEncoding.EncodeToString(a.mac([]byte("csrf"), []byte(cookie)))
}

type authKind int

const (
	authNone authKind = iota
	authKey
	authCookie
)

// identify tells how r is authenticated.
func (a *auth) identify(r *http.Request, now time.Time) (authKind, string) {
	if h := r.Header.Get("Authorization"); h != "" {
		if k, ok := strings.CutPrefix(h, "Bearer "); ok && a.checkKey(strings.TrimSpace(k)) {
			return authKey, ""
		}
		return authNone, ""
	}
	if k := r.Header.Get("X-Api-Key"); k != "" {
		if a.checkKey(k) {
			return authKey, ""
		}
		return authNone, ""
	}
	if c, err := r.Cookie(cookieName); err == nil && a.validCookie(c.Value, now) {
		return authCookie, c.Value
	}
	return authNone, ""
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// CheckListen refuses a non-loopback listen address without TLS unless
// insecure is set: API keys and session cookies must not cross a network
// in clear text.
func CheckListen(addr string, tls, insecure bool) error {
	if tls || insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("serve: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q (use --tls-cert/--tls-key, or --insecure-listen behind a TLS proxy)", ErrInsecureListen, addr)
}

// ErrInsecureListen: a non-loopback address without TLS.
var ErrInsecureListen = errors.New("serve: refusing to listen on a non-loopback address without TLS")
