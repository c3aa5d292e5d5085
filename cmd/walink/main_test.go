package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/walinkdev/walink/internal/qrimage"
)

// The test binary doubles as the walink command: with WALINK_TEST_MAIN=1
// it runs main, so the tests drive the real command (race-instrumented)
// without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("WALINK_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func walinkCmd(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WALINK_TEST_MAIN=1", "WALINK_STORE="+filepath.Join(t.TempDir(), "default.db"))
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runWalink runs the command to completion and returns stdout, stderr and
// the exit code.
func runWalink(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := walinkCmd(ctx, t, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("walink %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestLinkSimInTerminal runs `walink link --sim` in a pseudo-terminal with
// short QR timeouts and a late scan, and checks that the QR is drawn, is
// replaced in place on rotation, and that the run ends linked.
func TestLinkSimInTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := walinkCmd(ctx, t, "link", "--sim",
		"--qr-timeout-first", "1500ms", "--qr-timeout-next", "1s", "--sim-scan-delay", "2800ms")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 80, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, ptmx); close(done) }()
	err = cmd.Wait()
	ptmx.Close()
	<-done
	text := out.String()
	if err != nil {
		t.Fatalf("walink link --sim: %v\n%s", err, text)
	}
	if !strings.Contains(text, "▀") || !strings.Contains(text, "▄") {
		t.Fatalf("no QR drawn:\n%s", text)
	}
	linked := strings.Index(text, "Linked as 15551234567:")
	if linked < 0 || !strings.Contains(text[linked:], "Connected.") {
		t.Fatalf("no success lines:\n%s", text)
	}
	// Rotation replaces the drawing in place: the old block erased line
	// by line upwards, then the next QR, before the scan succeeded.
	if n := strings.Count(text[:linked], "\x1b[2K\r\x1b[30;47m"); n < 2 {
		t.Fatalf("QR redrawn in place %d times before linking, want ≥ 2 (rotation and re-render):\n%q", n, text)
	}
	if !strings.Contains(text, "QR code valid for") {
		t.Fatal("no countdown line")
	}
}

// simProcess runs `walink sim` and returns its first-line info.
type simInfo struct {
	WSURL         string `json:"ws_url"`
	RootPublicKey string `json:"root_public_key"`
	ControlURL    string `json:"control_url"`
}

func startSim(_ context.Context, t *testing.T, args ...string) simInfo {
	t.Helper()
	// Not tied to the test's context: cleanup stops it with SIGINT and
	// checks the clean shutdown.
	cmd := walinkCmd(context.Background(), t, append([]string{"sim", "--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("walink sim did not shut down cleanly on SIGINT: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("walink sim: %v", err)
	}
	var info simInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil || info.WSURL == "" || len(info.RootPublicKey) != 64 || info.ControlURL == "" {
		t.Fatalf("walink sim first line %q: %v", line, err)
	}
	return info
}

// postJSON posts body as JSON to url and returns the status and the
// decoded JSON object answered (nil if none).
func postJSON(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return doJSON(t, req)
}

// doJSON sends req and returns the status and the decoded JSON object
// answered (nil if none).
func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// linkJSON runs `walink link --json` against a sim process and plays the
// phone through the control API: it scans QR codes (again after a 409
// rescan) or, with a phone number, types the pair code.
func linkJSON(t *testing.T, info simInfo, storePath, phone string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"link", "--json", "--store", storePath, "--server", info.WSURL, "--server-root", info.RootPublicKey}
	if phone != "" {
		args = append(args, "--phone", phone)
	}
	cmd := walinkCmd(ctx, t, args...)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	var wg sync.WaitGroup
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	scanned := false
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		events = append(events, ev)
		switch ev["event"] {
		case "pairing_qr_code":
			if phone != "" || scanned {
				break
			}
			code := ev["code"].(string)
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body := postJSON(t, info.ControlURL+"/phones/15551234567/scan", map[string]string{"qr": code})
				if status == http.StatusOK {
					scanned = true
				} else if status != http.StatusConflict { // 409 = rescan the re-rendered code
					t.Errorf("scan: %d %v", status, body)
				}
			}()
			wg.Wait()
		case "pairing_code":
			code := ev["code"].(string)
			digits := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, phone)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, body := postJSON(t, info.ControlURL+"/phones/"+digits+"/link-code", map[string]string{"code": code[:4] + "-" + code[4:]}); status != http.StatusOK {
					t.Errorf("link-code: %d %v", status, body)
				}
			}()
		}
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("walink link --json: %v\nstderr: %s\nevents: %v", err, stderr.String(), events)
	}
	return events
}

func eventNames(evs []map[string]any) []string {
	var names []string
	for _, e := range evs {
		names = append(names, e["event"].(string))
	}
	return names
}

func checkKeys(t *testing.T, ev map[string]any, keys ...string) {
	t.Helper()
	if len(ev) != len(keys) {
		t.Errorf("event %v: want exactly the keys %v", ev, keys)
	}
	for _, k := range keys {
		if _, ok := ev[k]; !ok {
			t.Errorf("event %v lacks %q", ev, k)
		}
	}
}

// TestLinkJSONAgainstSimProcess: `walink sim` as a process, `walink link
// --json` as another, the phone played through the control API; then
// status and logout end to end.
func TestLinkJSONAgainstSimProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	info := startSim(ctx, t)

	t.Run("qr", func(t *testing.T) {
		storePath := filepath.Join(t.TempDir(), "qr.db")
		evs := linkJSON(t, info, storePath, "")
		names := eventNames(evs)
		if names[0] != "pairing_qr_code" || names[len(names)-1] != "connected" {
			t.Fatalf("events %v", names)
		}
		if evs[0]["timeout_s"] != float64(60) {
			t.Errorf("first QR code: timeout_s %v, want 60", evs[0]["timeout_s"])
		}
		var success map[string]any
		for _, e := range evs {
			switch e["event"] {
			case "pairing_qr_code":
				checkKeys(t, e, "event", "code", "timeout_s")
				if !strings.HasPrefix(e["code"].(string), "https://wa.me/settings/linked_devices#") {
					t.Errorf("QR string %q is not the current form", e["code"])
				}
			case "pair_success":
				checkKeys(t, e, "event", "id", "lid", "business_name", "platform")
				success = e
			case "connected":
				checkKeys(t, e, "event")
			}
		}
		if success == nil || !strings.HasPrefix(success["id"].(string), "15551234567:") {
			t.Fatalf("pair_success %v", success)
		}

		// status sees the session; logout finds the server remembered in the store.
		out, _, code := runWalink(t, "status", "--store", storePath)
		if code != 0 || !strings.HasPrefix(out, "linked\n") || !strings.Contains(out, success["id"].(string)) || !strings.Contains(out, "server:") {
			t.Fatalf("status: %d %q", code, out)
		}
		out, _, code = runWalink(t, "status", "--json", "--store", storePath)
		var st map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["linked"] != true || st["id"] != success["id"] {
			t.Fatalf("status: %d %q", code, out)
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(st["linked_at"])); err != nil {
			t.Errorf("linked_at %v: %v", st["linked_at"], err)
		}
		if out, errOut, code := runWalink(t, "logout", "--store", storePath); code != 0 {
			t.Fatalf("logout: %d %s %s", code, out, errOut)
		}
		out, _, code = runWalink(t, "status", "--json", "--store", storePath)
		if code != 0 || strings.TrimSpace(out) != `{"linked":false}` {
			t.Fatalf("status after logout: %d %q", code, out)
		}
		resp, err := http.Get(info.ControlURL + "/phones/15551234567/devices")
		if err != nil {
			t.Fatal(err)
		}
		var devs struct{ Devices []map[string]any }
		json.NewDecoder(resp.Body).Decode(&devs)
		resp.Body.Close()
		for _, d := range devs.Devices {
			if d["jid"] == success["id"] {
				t.Fatalf("server still lists %v after logout", d)
			}
		}
		// A second logout has nothing to do.
		if _, _, code := runWalink(t, "logout", "--store", storePath); code != exitLoggedOut {
			t.Fatalf("second logout exit %d, want %d", code, exitLoggedOut)
		}
	})

	t.Run("phone", func(t *testing.T) {
		evs := linkJSON(t, info, filepath.Join(t.TempDir(), "code.db"), "+1 555 000 1111")
		var sawCode, sawSuccess bool
		for _, e := range evs {
			switch e["event"] {
			case "pairing_code":
				checkKeys(t, e, "event", "code", "timeout_s")
				sawCode = len(e["code"].(string)) == 8 && e["timeout_s"] == float64(180)
			case "pair_success":
				sawSuccess = strings.HasPrefix(e["id"].(string), "15550001111:")
			}
		}
		if !sawCode || !sawSuccess {
			t.Fatalf("events %v", evs)
		}
	})
}

// TestUsageErrors: bad flags and bad phone numbers give one line on stderr
// and the documented exit code, before any network use.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{}, exitUsage, ""},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"link", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"link", "--phone", "0123456789"}, exitUsage, "international"},
		{[]string{"link", "--phone", "12345"}, exitUsage, "too short"},
		{[]string{"link", "--phone", "+-"}, exitUsage, "required"},
		{[]string{"link", "--phone", "15551234567", "--code", "ABCD123O"}, exitUsage, "code"},
		{[]string{"link", "--code", "ABCD1234"}, exitUsage, "--code needs --phone"},
		{[]string{"link", "--server", "ws://127.0.0.1:1/ws/chat"}, exitUsage, "go together"},
		{[]string{"link", "--server", "ws://x", "--server-root", "abc"}, exitUsage, "64 hex"},
		{[]string{"qr"}, exitUsage, "--png"},
		{[]string{"status", "extra"}, exitUsage, "unexpected argument"},
		{[]string{"logout"}, exitLoggedOut, "nothing is linked"},
		{[]string{"link", "--phone"}, exitUsage, "flag needs an argument"},
		{[]string{"link", "--phone", "+1 (555) abc"}, exitUsage, "too short"},
		{[]string{"link", "--push"}, exitUsage, "--push needs --phone"},
		{[]string{"link", "--sim", "--server-root", strings.Repeat("ab", 32)}, exitUsage, "--sim runs its own server"},
		{[]string{"link", "--qr-timeout-first", "soon"}, exitUsage, "invalid value"},
		{[]string{"qr", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"qr", "--png", "x.png", "--phone", "0800123456"}, exitUsage, "international"},
		{[]string{"status", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"logout", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"logout", "--server", "ws://127.0.0.1:1/ws/chat"}, exitUsage, "go together"},
		{[]string{"logout", "--server", "ws://x", "--server-root", "zz"}, exitUsage, "64 hex"},
		{[]string{"sim", "--bogus"}, exitUsage, "flag provided but not defined"},
	}
	for _, c := range cases {
		_, stderr, code := runWalink(t, c.args...)
		if code != c.code {
			t.Errorf("walink %v: exit %d, want %d (stderr %q)", c.args, code, c.code, stderr)
		}
		if c.msg != "" && !strings.Contains(stderr, c.msg) {
			t.Errorf("walink %v: stderr %q lacks %q", c.args, stderr, c.msg)
		}
		if c.msg != "" && strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("walink %v: stderr is not one line: %q", c.args, stderr)
		}
		if c.msg != "" && !strings.HasPrefix(stderr, "walink: ") {
			t.Errorf("walink %v: stderr %q does not start with \"walink: \"", c.args, stderr)
		}
	}
	// --help everywhere: the usage with the command's flags, exit 0.
	for _, c := range []struct{ cmd, flag string }{{"link", "-phone"}, {"qr", "-png"}, {"status", "-json"}, {"logout", "-server-root"}, {"sim", "-listen"}} {
		_, stderr, code := runWalink(t, c.cmd, "--help")
		if code != exitOK || !strings.Contains(stderr, "usage: walink "+c.cmd) || !strings.Contains(stderr, c.flag) {
			t.Errorf("walink %s --help: exit %d, stderr %q", c.cmd, code, stderr)
		}
	}
	if out, _, code := runWalink(t, "help"); code != exitOK || !strings.Contains(out, "Exit codes:") {
		t.Errorf("walink help: exit %d, %q", code, out)
	}
	out, _, code := runWalink(t, "status", "--json")
	if code != 0 || strings.TrimSpace(out) != `{"linked":false}` {
		t.Errorf("status on an empty machine: %d %q", code, out)
	}
	if out, _, code := runWalink(t, "version"); code != 0 || !strings.HasPrefix(out, "walink ") {
		t.Errorf("version: %d %q", code, out)
	}
}

// TestLinkQRCodesExpired: when every QR code expires unscanned, link ends
// with the documented exit code and one clear line on stderr; with --json
// the last event line is exactly {"event":"qr_codes_expired"}.
func TestLinkQRCodesExpired(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		args := []string{"link", "--sim", "--qr-timeout-first", "300ms", "--qr-timeout-next", "100ms", "--sim-scan-delay", "1h"}
		if asJSON {
			args = append(args, "--json")
		}
		stdout, stderr, code := runWalink(t, args...)
		if code != exitNotLinked {
			t.Fatalf("walink %v: exit %d, want %d\nstderr %q", args, code, exitNotLinked, stderr)
		}
		if !strings.HasPrefix(stderr, "walink: QR codes expired") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("walink %v: stderr %q", args, stderr)
		}
		if asJSON {
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			if last := lines[len(lines)-1]; last != `{"event":"qr_codes_expired"}` {
				t.Errorf("last --json line %q", last)
			}
			if len(lines) < 2 {
				t.Errorf("no pairing_qr_code before the expiry: %q", stdout)
			}
			for _, l := range lines[:len(lines)-1] {
				var ev map[string]any
				if err := json.Unmarshal([]byte(l), &ev); err != nil || ev["event"] != "pairing_qr_code" {
					t.Errorf("unexpected line before the expiry: %q", l)
				}
			}
		}
	}
}

// TestQRImage: `walink qr --png` writes a PNG a scanner reads back as the
// QR string of the first pairing_qr_code.
func TestQRImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info := startSim(ctx, t)
	png := filepath.Join(t.TempDir(), "qr.png")
	cmd := walinkCmd(ctx, t, "link", "--json", "--qr-png", png, "--store", filepath.Join(t.TempDir(), "s.db"),
		"--server", info.WSURL, "--server-root", info.RootPublicKey)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	json.Unmarshal([]byte(line), &ev)
	data, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeQRPNG(data)
	if err != nil {
		t.Fatal(err)
	}
	if got != ev["code"] {
		t.Fatalf("PNG holds %q, event says %q", got, ev["code"])
	}
}

func decodeQRPNG(b []byte) (string, error) { return qrimage.DecodePNG(b) }

// TestSimFlags: scenario knobs set by flags reach the server (read back
// through GET /config), and a bad value is a usage error.
func TestSimFlags(t *testing.T) {
	info := startSim(context.Background(), t, "--qr-refresh=false", "--min-client-version", "2.3000.5", "--ref-count", "3", "--pair-code-rate-limit", "2")
	resp, err := http.Get(info.ControlURL + "/config")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["qr_refresh"] != false || cfg["min_client_version"] != "2.3000.5" || cfg["ref_count"] != float64(3) || cfg["pair_code_rate_limit"] != float64(2) {
		t.Fatalf("config %v", cfg)
	}
	if _, stderr, code := runWalink(t, "sim", "--ref-count", "-1"); code != exitUsage {
		t.Fatalf("sim --ref-count -1: exit %d (%s)", code, stderr)
	}
}
