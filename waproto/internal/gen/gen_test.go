package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate regenerates in memory and compares with the
// committed *.pb.go files, so a .proto edit without `go generate` fails CI.
func TestGeneratedUpToDate(t *testing.T) {
	dir := filepath.Join("..", "..")
	out, err := generate(context.Background(), dir)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if len(out) == 0 {
		t.Fatal("generator produced no files")
	}
	for name, want := range out {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./waproto)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./waproto", name)
		}
	}
	// Every committed .pb.go must come from a .proto that still exists.
	committed, _ := filepath.Glob(filepath.Join(dir, "*.pb.go"))
	for _, p := range committed {
		if _, ok := out[filepath.Base(p)]; !ok {
			t.Errorf("%s has no .proto source: delete it", filepath.Base(p))
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	dir := filepath.Join("..", "..")
	a, err := generate(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for name := range a {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two runs", name)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	if _, err := generate(context.Background(), t.TempDir()); err == nil {
		t.Error("empty dir: want error")
	}
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "bad.proto"), []byte("syntax = \"proto2\"; message {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := generate(context.Background(), d); err == nil {
		t.Error("bad proto: want error")
	}
}
