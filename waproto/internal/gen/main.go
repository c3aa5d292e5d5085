// Command gen compiles the .proto files of package waproto and writes the
// Go code next to them. It runs protocompile and protoc-gen-go's generator
// in-process, both pinned by go.mod, so `go generate ./waproto` needs no
// system protoc and gives byte-identical output on every machine.
//
// Usage (from the waproto directory, as go:generate runs it):
//
//	go run ./internal/gen [-dir .]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	dir := flag.String("dir", ".", "directory holding the .proto files; output is written there")
	flag.Parse()
	out, err := generate(context.Background(), *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for _, name := range sortedKeys(out) {
		if err := os.WriteFile(filepath.Join(*dir, name), out[name], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}

// protoFiles lists the .proto files of dir, sorted so the output order is stable.
func protoFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".proto") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no .proto files in %s", dir)
	}
	sort.Strings(names)
	return names, nil
}

// generate returns the generated files (name relative to dir → content).
func generate(ctx context.Context, dir string) (map[string][]byte, error) {
	names, err := protoFiles(dir)
	if err != nil {
		return nil, err
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: []string{dir},
		}),
		// Standard source info carries the comments into the Go code, as protoc does.
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}

	// Build the request protoc would send: every file plus its dependencies,
	// dependencies first.
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: names,
		Parameter:      ptr("paths=source_relative"),
	}
	seen := map[string]bool{}
	for _, f := range files {
		imports := f.Imports()
		for i := 0; i < imports.Len(); i++ {
			dep := imports.Get(i).FileDescriptor
			if !seen[dep.Path()] {
				seen[dep.Path()] = true
				req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(dep))
			}
		}
		if !seen[f.Path()] {
			seen[f.Path()] = true
			req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(f))
		}
	}

	plugin, err := protogen.Options{}.New(req)
	if err != nil {
		return nil, fmt.Errorf("protogen: %w", err)
	}
	for _, f := range plugin.Files {
		if f.Generate {
			gengo.GenerateFile(plugin, f)
		}
	}
	resp := plugin.Response()
	if resp.Error != nil {
		return nil, fmt.Errorf("protoc-gen-go: %s", resp.GetError())
	}
	out := make(map[string][]byte, len(resp.File))
	for _, f := range resp.File {
		out[f.GetName()] = bytes.Clone([]byte(f.GetContent()))
	}
	return out, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }
