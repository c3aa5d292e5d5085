// Package vectors loads ../shared/protocol/vectors.json for tests. It finds
// the file by walking up from the working directory, so tests in any package
// can use it; tests that need it skip with a clear message when it is absent.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the protocol facts folder (shared/protocol), or "" if none is
// found. WALINK_PROTOCOL_DIR overrides the search.
func Dir() string {
	if d := os.Getenv("WALINK_PROTOCOL_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, c := range []string{filepath.Join(d, "shared", "protocol"), filepath.Join(d, "..", "shared", "protocol")} {
			if _, err := os.Stat(filepath.Join(c, "vectors.json")); err == nil {
				return c
			}
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Load returns vectors.json decoded into a generic map; the test fails if
// the file cannot be found (CI always has shared/ beside the clone).
func Load(t testing.TB) map[string]any {
	t.Helper()
	return loadJSON(t, "vectors.json")
}

// LoadFile decodes any JSON file of the protocol folder.
func LoadFile(t testing.TB, name string) map[string]any { t.Helper(); return loadJSON(t, name) }

func loadJSON(t testing.TB, name string) map[string]any {
	t.Helper()
	d := Dir()
	if d == "" {
		t.Fatalf("vectors: shared/protocol not found (set WALINK_PROTOCOL_DIR)")
	}
	b, err := os.ReadFile(filepath.Join(d, name))
	if err != nil {
		t.Fatalf("vectors: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("vectors: %s: %v", name, err)
	}
	return m
}

// Get walks a path of keys ("noise_xx", "server_static", "priv").
func Get(t testing.TB, m map[string]any, path ...string) any {
	t.Helper()
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("vectors: %v: %q is not an object", path, p)
		}
		cur, ok = mm[p]
		if !ok {
			t.Fatalf("vectors: %v: no key %q", path, p)
		}
	}
	return cur
}

// Str returns the string at path.
func Str(t testing.TB, m map[string]any, path ...string) string {
	t.Helper()
	s, ok := Get(t, m, path...).(string)
	if !ok {
		t.Fatalf("vectors: %v is not a string", path)
	}
	return s
}

// Hex returns the hex-decoded bytes at path.
func Hex(t testing.TB, m map[string]any, path ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(Str(t, m, path...))
	if err != nil {
		t.Fatalf("vectors: %v: %v", path, err)
	}
	return b
}
