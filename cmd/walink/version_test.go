package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func putConfig(t *testing.T, controlURL string, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, controlURL+"/config", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /config %v: %d", body, resp.StatusCode)
	}
}

// TestLinkVersionRecovery: a linked store, the server raises its minimum
// version; `walink link --version-url` logs in, gets 405, fetches the
// revision from the sim's /sw.js, reconnects and reports connected;
// status shows the fetched version and the IK resume. With a version URL
// that fails, link ends refused with the reason, and nothing loops.
func TestLinkVersionRecovery(t *testing.T) {
	info := startSim(t.Context(), t)
	storePath := filepath.Join(t.TempDir(), "v.db")
	linkJSON(t, info, storePath, "")

	out, _, code := runWalink(t, "status", "--store", storePath)
	if code != 0 || !strings.Contains(out, "version:   2.3000.1045368834 (built-in)") || !strings.Contains(out, "resume:    yes, Noise IK") {
		t.Fatalf("status after linking: %d %q", code, out)
	}

	putConfig(t, info.ControlURL, map[string]any{"min_client_version": "2.3000.1045368900", "web_revision": 1045368900})
	server := []string{"--store", storePath, "--server", info.WSURL, "--server-root", info.RootPublicKey}

	// A version URL that does not answer a script: refused, with why.
	out, errOut, code := runWalink(t, append([]string{"link", "--json", "--version-url", info.ControlURL + "/no-such-script.js"}, server...)...)
	if code != exitRefused || !strings.Contains(errOut, "fetching the current WhatsApp Web version failed") {
		t.Fatalf("link with a failing version URL: %d %q %q", code, out, errOut)
	}

	out, errOut, code = runWalink(t, append([]string{"link", "--json", "--version-url", info.ControlURL + "/sw.js"}, server...)...)
	if code != 0 || !strings.Contains(out, `"connected"`) {
		t.Fatalf("link with the sim's version URL: %d %q %q", code, out, errOut)
	}
	out, _, code = runWalink(t, "status", "--json", "--store", storePath)
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json: %d %q", code, out)
	}
	if st["version"] != "2.3000.1045368900" || st["version_source"] != "fetched" || st["resume_ik"] != true || st["version_fetched_at"] == nil {
		t.Fatalf("status --json after recovery: %v", st)
	}
	out, _, _ = runWalink(t, "status", "--store", storePath)
	if !strings.Contains(out, "version:   2.3000.1045368900 (fetched)") {
		t.Fatalf("status after recovery: %q", out)
	}
}

func TestVersionURLFlags(t *testing.T) {
	for _, cmd := range []string{"link", "serve"} {
		_, errOut, code := runWalink(t, cmd, "--help")
		if !strings.Contains(errOut, "-version-url URL") {
			t.Errorf("%s --help (%d) does not offer --version-url: %s", cmd, code, errOut)
		}
	}
}
