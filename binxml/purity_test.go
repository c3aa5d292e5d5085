package binxml_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure: the codec packages import nothing that does I/O, reads clocks
// or draws randomness (STYLE.md: pure packages).
func TestPure(t *testing.T) {
	banned := map[string]bool{"net": true, "os": true, "os/exec": true, "time": true, "crypto/rand": true, "math/rand": true, "math/rand/v2": true, "log": true, "log/slog": true}
	for _, dir := range []string{".", "../jid", "binxmltest"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pf, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range pf.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if banned[p] || strings.HasPrefix(p, "net/") {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
