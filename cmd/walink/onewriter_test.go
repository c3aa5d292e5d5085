package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLINeverWritesTheDevice: the device record has one writer, the
// client's connection; the CLI goes through the client (Connect, Logout,
// …) and only reads the store. A call of a store write method anywhere in
// the command's code fails this test.
func TestCLINeverWritesTheDevice(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	writes := map[string]bool{"PutDevice": true, "DeleteDevice": true, "PutPreKeys": true}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && writes[sel.Sel.Name] {
					t.Errorf("%s: the CLI calls %s: device writes belong to the client", fset.Position(call.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}
