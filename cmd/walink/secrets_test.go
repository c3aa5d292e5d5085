package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/pairing"
	"github.com/walinkdev/walink/store/sqlite"
)

// TestLinkJSONLeaksNoSecret runs `walink link --json --sim` (QR and pair
// code) to the end, then scans its stdout and stderr, and `walink status
// --json`, for the stored private keys and adv secret in hex and base64.
// The adv secret may appear only in the "code" of pairing_qr_code lines.
func TestLinkJSONLeaksNoSecret(t *testing.T) {
	for _, flow := range [][]string{nil, {"--phone", "+1 555 123 4567"}} {
		name := "qr"
		if flow != nil {
			name = "pair-code"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			path := filepath.Join(t.TempDir(), "s.db")
			args := append([]string{"link", "--json", "--sim", "--sim-scan-delay", "10ms", "--store", path}, flow...)
			cmd := walinkCmd(ctx, t, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("walink link: %v\n%s", err, stderr.String())
			}
			status := walinkCmd(ctx, t, "status", "--json", "--store", path)
			statusOut, err := status.CombinedOutput()
			if err != nil {
				t.Fatalf("walink status: %v", err)
			}

			st, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			dev, err := pickDevice(ctx, st)
			if err != nil || !dev.Linked() {
				t.Fatalf("no linked device after link (%v)", err)
			}
			secrets := map[string][]byte{
				"noise private key":          dev.NoiseKey.Private.Bytes(),
				"identity private key":       dev.IdentityKey.Private.Bytes(),
				"signed pre-key private key": dev.SignedPreKey.Private.Bytes(),
			}
			for id := uint32(1); id <= 3; id++ {
				if pk, err := st.PreKey(ctx, dev.NoiseKey.Public, id); err == nil {
					secrets[fmt.Sprintf("pre-key %d", id)] = pk.Private.Bytes()
				}
			}
			adv := map[string][]byte{"adv secret": dev.AdvSecret[:]}

			// Split stdout: QR codes may carry their adv secret.
			var rest strings.Builder
			sc := bufio.NewScanner(&stdout)
			sc.Buffer(nil, 1<<20)
			lines := 0
			for sc.Scan() {
				lines++
				var ev map[string]any
				if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == "pairing_qr_code" {
					code, _ := ev["code"].(string)
					if q, err := pairing.ParseQR(code); err == nil {
						adv[fmt.Sprintf("QR adv secret %d", lines)] = bytes.Clone(q.AdvSecret[:])
					}
					checkNoSecret(t, "a QR code", code, secrets)
					delete(ev, "code")
					b, _ := json.Marshal(ev)
					rest.Write(b)
					continue
				}
				rest.Write(sc.Bytes())
				rest.WriteByte('\n')
			}
			if lines == 0 {
				t.Fatal("no --json output")
			}
			// With --phone the virtual phone links by the code, so the
			// flow under test really is the pair code's.
			if flow != nil && !strings.Contains(stdout.String()+rest.String(), `"event":"pairing_code"`) {
				t.Errorf("--phone run printed no pairing_code event:\n%s", rest.String())
			}
			for where, text := range map[string]string{"stdout": rest.String(), "stderr": stderr.String(), "status --json": string(statusOut)} {
				checkNoSecret(t, where, text, secrets)
				checkNoSecret(t, where, text, adv)
			}
		})
	}
}

func checkNoSecret(t *testing.T, where, text string, secrets map[string][]byte) {
	t.Helper()
	lower := strings.ToLower(text)
	for name, s := range secrets {
		if strings.Contains(lower, hex.EncodeToString(s)) {
			t.Errorf("%s holds the %s in hex", where, name)
		}
		for off := 0; off < 3; off++ {
			padded := append(make([]byte, off), s...)
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				e := enc.EncodeToString(padded)
				start := (off*8 + 5) / 6
				if strings.Contains(text, e[start+1:start+36]) {
					t.Errorf("%s holds the %s in base64", where, name)
				}
			}
		}
	}
}
