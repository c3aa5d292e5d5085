// Package vectors loads the protocol vectors that tests check against. They
// live in the module's testdata/protocol (copies of the project's shared
// protocol facts, kept in sync by `go generate ./internal/vectors`), so a
// clone with nothing beside it passes its own tests.
package vectors

//go:generate go run ./sync

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Files are the protocol files copied into testdata/protocol.
var Files = []string{"vectors.json", "tokens.json", "tokens-v2.json", "e2e_transcript.json"}

// Dir returns the module's testdata/protocol folder, found by walking up
// from the working directory (tests run in their package's folder), or ""
// if none is found. WALINK_PROTOCOL_DIR overrides the search.
func Dir() string {
	if d := os.Getenv("WALINK_PROTOCOL_DIR"); d != "" {
		return d
	}
	return walkUp(func(d string) string {
		c := filepath.Join(d, "testdata", "protocol")
		if exists(filepath.Join(c, "vectors.json")) && exists(filepath.Join(d, "go.mod")) {
			return c
		}
		return ""
	})
}

// SharedDir returns the project's shared/protocol folder above the module
// (the source of the copies), or "" when the module was cloned alone.
// WALINK_SHARED_PROTOCOL overrides the search.
func SharedDir() string {
	if d := os.Getenv("WALINK_SHARED_PROTOCOL"); d != "" {
		return d
	}
	return walkUp(func(d string) string {
		for _, c := range []string{filepath.Join(d, "shared", "protocol"), filepath.Join(d, "..", "shared", "protocol")} {
			if exists(filepath.Join(c, "vectors.json")) {
				return c
			}
		}
		return ""
	})
}

func walkUp(match func(dir string) string) string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if m := match(d); m != "" {
			return m
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Load returns vectors.json decoded into a generic map.
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
		t.Fatalf("vectors: testdata/protocol not found above %s (set WALINK_PROTOCOL_DIR)", wdOr())
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

func wdOr() string {
	wd, _ := os.Getwd()
	return wd
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
