package serve

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseAPIKeys: any file parses or fails with ErrBadKeyFile, and the
// error never repeats a line of the file (it could be a key).
func FuzzParseAPIKeys(f *testing.F) {
	f.Add("# keys\nfirst-key-0123456789\n")
	f.Add("sha256:" + strings.Repeat("ab", 32) + "\n")
	f.Add("short\n\n  \n#x")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseAPIKeys(strings.NewReader(s))
		if err != nil {
			for _, l := range strings.Split(s, "\n") {
				if l = strings.TrimSpace(l); len(l) >= 8 && strings.Contains(err.Error(), l) {
					t.Fatalf("error %q repeats the line %q", err, l)
				}
			}
			return
		}
		a, _ := newAuth(keys)
		for _, l := range strings.Split(s, "\n") {
			l = strings.TrimSpace(l)
			if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "sha256:") && len(l) <= 64*1024 && !a.checkKey(l) {
				t.Fatalf("key %q from the file not accepted", l)
			}
		}
	})
}

// FuzzCookie: only cookies the service made validate; nothing panics.
func FuzzCookie(f *testing.F) {
	a, _ := newAuth(nil)
	now := time.Unix(1_800_000_000, 0)
	f.Add(a.newCookie(now))
	f.Add("")
	f.Add("a.b")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		if a.validCookie(v, now) {
			// A valid cookie must be one newCookie could have made: its MAC
			// checks, so changing any byte breaks it.
			b := []byte(v)
			b[len(b)/2] ^= 1
			if a.validCookie(string(b), now) && string(b) != v {
				t.Fatalf("cookie %q still valid with a flipped byte", v)
			}
		}
		other, _ := newAuth(nil)
		if other.validCookie(v, now) {
			t.Fatalf("cookie %q valid under another key", v)
		}
	})
}

// FuzzQRFormat: any Accept header picks one of the formats or none.
func FuzzQRFormat(f *testing.F) {
	f.Add("image/png")
	f.Add("image/svg+xml;q=0.9, application/json;q=0.5")
	f.Add("*/*")
	f.Add(";;q=x,")
	f.Fuzz(func(t *testing.T, accept string) {
		r, _ := http.NewRequest("GET", "/v1/sessions/x/qr", nil)
		r.Header.Set("Accept", accept)
		switch got := qrFormat(r); got {
		case "", "png", "svg", "json":
		default:
			t.Fatalf("Accept %q: format %q", accept, got)
		}
	})
}
