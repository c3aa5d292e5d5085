package noise_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The package must stay pure: no network, no filesystem, no clock or
// randomness of its own (crypto/rand is allowed only in tests).
func TestPureImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "github.com/walinkdev/walink/noise").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		switch imp {
		case "net", "os", "crypto/rand", "math/rand", "math/rand/v2", "net/http", "log", "log/slog":
			t.Errorf("noise imports %s", imp)
		}
	}
}
