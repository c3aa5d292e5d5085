package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/walinkdev/walink/internal/vectors"
)

// TestGeneratedUpToDate: running the generator reproduces tokens_gen.go
// byte for byte.
func TestGeneratedUpToDate(t *testing.T) {
	got, err := Generate(".")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "tokens_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("tokens_gen.go is stale: run go generate ./binxml")
	}
}

// TestCopiesMatchProtocol: the JSON copies here equal the module's protocol copies.
func TestCopiesMatchProtocol(t *testing.T) {
	dir := vectors.Dir()
	if dir == "" {
		t.Fatal("testdata/protocol not found")
	}
	for _, name := range []string{"tokens.json", "tokens-v2.json"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s", name, filepath.Join(dir, name))
		}
	}
}

func TestRejectsBadTables(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokens-v2.json", `{"dict_version":2,"single_byte":[""],"double_byte":[]}`)
	write("tokens.json", `{"dict_version":3,"single_byte":["x"],"double_byte":[]}`)
	if _, err := Generate(dir); err == nil {
		t.Error("bad tables accepted")
	}
}
