package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// indexOf returns the index of the first event named name (-1: none).
func indexOf(evs []map[string]any, name string) int {
	for i, e := range evs {
		if e["event"] == name {
			return i
		}
	}
	return -1
}

func parseJSONLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		evs = append(evs, ev)
	}
	return evs
}

// checkPasskeyEvents: the step's events with exactly their documented
// keys, in order before pair_success and connected.
func checkPasskeyEvents(t *testing.T, evs []map[string]any) {
	t.Helper()
	req, conf, ok, conn := indexOf(evs, "pair_passkey_request"), indexOf(evs, "pair_passkey_confirmation"), indexOf(evs, "pair_success"), indexOf(evs, "connected")
	if req < 0 || conf < req || ok < conf || conn < ok {
		t.Fatalf("events %v", eventNames(evs))
	}
	checkKeys(t, evs[req], "event", "options")
	opts, _ := evs[req]["options"].(map[string]any)
	if opts["rpId"] != "whatsapp.com" || opts["challenge"] == nil || opts["userVerification"] != "required" {
		t.Fatalf("options %v", opts)
	}
	checkKeys(t, evs[conf], "event", "code", "skip_handoff_ux")
	if c, _ := evs[conf]["code"].(string); len(c) != 9 || c[4] != '-' {
		t.Fatalf("code %v", evs[conf]["code"])
	}
}

// `walink link --sim --passkey`: the virtual phone scans and approves with
// its passkey; the whole step runs unattended (no terminal, no --yes: the
// handoff proof lets the CLI confirm).
func TestLinkSimPasskeyJSON(t *testing.T) {
	out, errOut, code := runWalink(t, "link", "--sim", "--passkey", "--json", "--sim-scan-delay", "50ms")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	checkPasskeyEvents(t, parseJSONLines(t, out))

	// Text mode says what to do, for which rpId, until when, and the code.
	out, errOut, code = runWalink(t, "link", "--sim", "--passkey", "--sim-scan-delay", "50ms", "--phone", "+1 555 123 4567")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"protected by a passkey", "for whatsapp.com", "before ", "Confirmation code:", "Linked as 15551234567:", "Connected."} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in:\n%s", want, out)
		}
	}
	if _, errOut, code := runWalink(t, "link", "--passkey"); code != exitUsage || !strings.Contains(errOut, "--passkey needs --sim") {
		t.Fatalf("--passkey without --sim: %d %q", code, errOut)
	}
}

// Against a `walink sim --passkey both` process: the assertion comes from
// the phone's control API through --passkey-assertion - (one JSON line on
// standard input) and through a FILE with --yes; a refused one (another
// challenge) prints pair_passkey_error.
func TestLinkPasskeyAssertionInput(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	info := startSim(ctx, t, "--passkey", "both")
	phoneURL := info.ControlURL + "/phones/15551234567"
	assertion := func(t *testing.T, options any, otherChallenge bool) []byte {
		t.Helper()
		if otherChallenge {
			o := options.(map[string]any)
			o2 := map[string]any{}
			for k, v := range o {
				o2[k] = v
			}
			o2["challenge"] = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
			options = o2
		}
		status, body := postJSON(t, phoneURL+"/passkey/assert", map[string]any{"options": options})
		if status != http.StatusOK {
			t.Fatalf("assert: %d %v", status, body)
		}
		b, _ := json.Marshal(body["assertion"])
		return b
	}

	// run links with args, answering each request by answer; it returns
	// the events and the exit code.
	run := func(t *testing.T, args []string, answer func(options any) []byte, stdin bool) ([]map[string]any, int) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		cmd := walinkCmd(rctx, t, append([]string{"link", "--json", "--store", filepath.Join(t.TempDir(), "s.db"), "--server", info.WSURL, "--server-root", info.RootPublicKey}, args...)...)
		stdout, _ := cmd.StdoutPipe()
		in, _ := cmd.StdinPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var evs []map[string]any
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		scans := 0
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("not a JSON line: %q", sc.Text())
			}
			evs = append(evs, ev)
			switch ev["event"] {
			case "pairing_qr_code":
				if scans++; scans <= 2 {
					code := ev["code"].(string)
					// The scan answers only when linking ends: do not wait.
					go func() {
						b, _ := json.Marshal(map[string]string{"qr": code})
						if resp, err := http.Post(phoneURL+"/scan", "application/json", bytes.NewReader(b)); err == nil {
							resp.Body.Close()
						}
					}()
				}
			case "pair_passkey_request":
				a := answer(ev["options"])
				if stdin {
					in.Write(append(a, '\n'))
				}
			}
		}
		in.Close()
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(interface{ ExitCode() int }); ok && err != nil {
			code = ee.ExitCode()
		}
		if code != 0 {
			t.Logf("stderr: %s", stderr.String())
		}
		return evs, code
	}

	t.Run("stdin", func(t *testing.T) {
		evs, code := run(t, []string{"--passkey-assertion", "-"}, func(o any) []byte { return assertion(t, o, false) }, true)
		if code != 0 {
			t.Fatalf("exit %d, events %v", code, eventNames(evs))
		}
		checkPasskeyEvents(t, evs)
	})
	t.Run("file-yes", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "assertion.json")
		evs, code := run(t, []string{"--passkey-assertion", file, "--yes"}, func(o any) []byte {
			a := assertion(t, o, false)
			if err := os.WriteFile(file, a, 0o600); err != nil {
				t.Fatal(err)
			}
			return a
		}, false)
		if code != 0 {
			t.Fatalf("exit %d, events %v", code, eventNames(evs))
		}
		checkPasskeyEvents(t, evs)
	})
	t.Run("refused", func(t *testing.T) {
		// Only the refusal's report is checked here: the exit (3) comes at
		// the step's deadline, minutes later.
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		cmd := walinkCmd(rctx, t, "link", "--json", "--store", filepath.Join(t.TempDir(), "s.db"), "--server", info.WSURL, "--server-root", info.RootPublicKey, "--passkey-assertion", "-")
		stdout, _ := cmd.StdoutPipe()
		in, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		scans := 0
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("not a JSON line: %q", sc.Text())
			}
			switch ev["event"] {
			case "pairing_qr_code":
				if scans++; scans <= 2 {
					code := ev["code"].(string)
					go func() {
						b, _ := json.Marshal(map[string]string{"qr": code})
						if resp, err := http.Post(phoneURL+"/scan", "application/json", bytes.NewReader(b)); err == nil {
							resp.Body.Close()
						}
					}()
				}
			case "pair_passkey_request":
				in.Write(append(assertion(t, ev["options"], true), '\n'))
			case "pair_passkey_error":
				checkKeys(t, ev, "event", "error", "continuation")
				if ev["continuation"] != false || !strings.Contains(ev["error"].(string), "401") {
					t.Fatalf("pair_passkey_error %v", ev)
				}
				return
			case "pair_success", "connected":
				t.Fatalf("linked with a refused assertion: %v", ev)
			}
		}
		t.Fatal("no pair_passkey_error")
	})
}

// On a terminal the code is confirmed after Enter: `walink link --sim
// --passkey` in a pseudo-terminal waits at the prompt until a newline.
func TestLinkSimPasskeyTerminalEnter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := walinkCmd(ctx, t, "link", "--sim", "--passkey", "--sim-scan-delay", "50ms")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 80, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				close(done)
				return
			}
		}
	}()
	text := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	for !strings.Contains(text(), "Press Enter") {
		select {
		case <-done:
			t.Fatalf("ended before the prompt:\n%s", text())
		case <-ctx.Done():
			t.Fatalf("no prompt:\n%s", text())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if strings.Contains(text(), "Linked as") {
		t.Fatalf("linked before Enter:\n%s", text())
	}
	ptmx.Write([]byte("\r"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("walink link: %v\n%s", err, text())
	}
	ptmx.Close()
	<-done
	if s := text(); !strings.Contains(s, "Confirmation code:") || !strings.Contains(s, "Connected.") {
		t.Fatalf("output:\n%s", s)
	}
}
