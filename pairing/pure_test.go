package pairing

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPure enforces the house rule: no network, files, clock or global
// randomness in this package's dependency graph (besides what the standard
// crypto packages need internally).
func TestPure(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(goBin, "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		switch {
		case imp == "net" || strings.HasPrefix(imp, "net/"), imp == "os" || strings.HasPrefix(imp, "os/"),
			imp == "time", imp == "math/rand", imp == "math/rand/v2", imp == "log", imp == "log/slog", imp == "crypto/rand":
			t.Errorf("pairing imports %s directly", imp)
		}
	}
}
