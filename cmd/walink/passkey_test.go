package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// pkLink is one `walink link --json` process against a `walink sim`
// process, the phone played through the control API.
type pkLink struct {
	t        *testing.T
	phoneURL string
	stdin    io.WriteCloser
	qr       string   // the last QR code shown
	scans    chan int // the statuses of the scans, in order (a scan answers when linking ends)
	evs      []map[string]any
	code     int
	stderr   bytes.Buffer
}

// scan has the phone scan code; the status goes to l.scans.
func (l *pkLink) scan(code string) {
	go func() {
		b, _ := json.Marshal(map[string]string{"qr": code})
		status := 0
		if resp, err := http.Post(l.phoneURL+"/scan", "application/json", bytes.NewReader(b)); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		l.scans <- status
	}()
}

// assertion asks the phone for an assertion for options, for another
// challenge when otherChallenge.
func (l *pkLink) assertion(options any, otherChallenge bool) []byte {
	l.t.Helper()
	if otherChallenge {
		o2 := map[string]any{}
		for k, v := range options.(map[string]any) {
			o2[k] = v
		}
		o2["challenge"] = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		options = o2
	}
	status, body := postJSON(l.t, l.phoneURL+"/passkey/assert", map[string]any{"options": options})
	if status != http.StatusOK {
		l.t.Fatalf("assert: %d %v", status, body)
	}
	b, _ := json.Marshal(body["assertion"])
	return b
}

// runPasskeyLink runs `walink link --json` with args (a fresh store)
// against the sim until it exits. The phone scans the first two QR codes
// (the first is retired by companion_reg_refresh); on sees every event
// first.
func runPasskeyLink(t *testing.T, info simInfo, args []string, on func(l *pkLink, ev map[string]any)) *pkLink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := &pkLink{t: t, phoneURL: info.ControlURL + "/phones/15551234567", scans: make(chan int, 8)}
	cmd := walinkCmd(ctx, t, append([]string{"link", "--json", "--store", filepath.Join(t.TempDir(), "s.db"), "--server", info.WSURL, "--server-root", info.RootPublicKey}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	l.stdin, _ = cmd.StdinPipe()
	cmd.Stderr = &l.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	qrs := 0
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		l.evs = append(l.evs, ev)
		if ev["event"] == "pairing_qr_code" {
			l.qr = ev["code"].(string)
			if qrs++; qrs <= 2 {
				l.scan(l.qr)
			}
		}
		if on != nil {
			on(l, ev)
		}
	}
	l.stdin.Close()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("walink link: %v", err)
		}
		l.code = ee.ExitCode()
	}
	return l
}

// Against a `walink sim --passkey both` process: the assertion comes from
// the phone's control API through --passkey-assertion - (one JSON line on
// standard input) and through a FILE with --yes.
func TestLinkPasskeyAssertionInput(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	info := startSim(ctx, t, "--passkey", "both")
	t.Run("stdin", func(t *testing.T) {
		l := runPasskeyLink(t, info, []string{"--passkey-assertion", "-"}, func(l *pkLink, ev map[string]any) {
			if ev["event"] == "pair_passkey_request" {
				l.stdin.Write(append(l.assertion(ev["options"], false), '\n'))
			}
		})
		if l.code != 0 {
			t.Fatalf("exit %d, events %v\n%s", l.code, eventNames(l.evs), l.stderr.String())
		}
		checkPasskeyEvents(t, l.evs)
	})
	t.Run("file-yes", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "assertion.json")
		l := runPasskeyLink(t, info, []string{"--passkey-assertion", file, "--yes"}, func(l *pkLink, ev map[string]any) {
			if ev["event"] == "pair_passkey_request" {
				if err := os.WriteFile(file, l.assertion(ev["options"], false), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		})
		if l.code != 0 {
			t.Fatalf("exit %d, events %v\n%s", l.code, eventNames(l.evs), l.stderr.String())
		}
		checkPasskeyEvents(t, l.evs)
	})
}

// How `walink link` fails in the passkey step, against a sim whose step
// lasts 5 s: each run ends by itself, promptly, with exit 3 and a message
// that says what to do.
func TestLinkPasskeyFailures(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const window = 5 * time.Second
	info := startSim(ctx, t, "--passkey", "both", "--passkey-timeout-ms", strconv.Itoa(int(window/time.Millisecond)))
	notLinked := func(t *testing.T, l *pkLink, start time.Time, want string) {
		t.Helper()
		if l.code != exitNotLinked || !strings.Contains(l.stderr.String(), want) {
			t.Fatalf("exit %d, stderr %q, want %d and %q; events %v", l.code, l.stderr.String(), exitNotLinked, want, eventNames(l.evs))
		}
		// The ceremony window, not the client's Deadline (a minute more).
		if took := time.Since(start); took > window+20*time.Second {
			t.Fatalf("ended %v after the request", took)
		}
		if indexOf(l.evs, "pair_success") >= 0 || indexOf(l.evs, "connected") >= 0 {
			t.Fatalf("linked: %v", eventNames(l.evs))
		}
	}

	// A refused assertion (another challenge) prints pair_passkey_error;
	// no new request follows, so the run exits 3 when the request's window
	// ends.
	t.Run("refused", func(t *testing.T) {
		var start time.Time
		l := runPasskeyLink(t, info, []string{"--passkey-assertion", "-"}, func(l *pkLink, ev map[string]any) {
			switch ev["event"] {
			case "pair_passkey_request":
				start = time.Now()
				l.stdin.Write(append(l.assertion(ev["options"], true), '\n'))
			case "pair_passkey_error":
				checkKeys(t, ev, "event", "error", "continuation")
				if ev["continuation"] != false || !strings.Contains(ev["error"].(string), "401") {
					t.Fatalf("pair_passkey_error %v", ev)
				}
			}
		})
		if indexOf(l.evs, "pair_passkey_error") < 0 {
			t.Fatalf("no pair_passkey_error: %v", eventNames(l.evs))
		}
		notLinked(t, l, start, "passkey refused and no new request before the deadline")
	})

	// No terminal, no --yes, and a code that came without a handoff proof:
	// the first request goes unanswered until WhatsApp ends the step; the
	// phone scans again, and the client answers the second request without
	// a proof (the secret it holds then was never shown to the phone), so
	// nothing vouches for the code.
	t.Run("no proof, no terminal, no --yes", func(t *testing.T) {
		var start time.Time
		requests := 0
		l := runPasskeyLink(t, info, []string{"--passkey-assertion", "-"}, func(l *pkLink, ev map[string]any) {
			switch ev["event"] {
			case "pair_passkey_request":
				if requests++; requests == 1 {
					go func() {
						for s := range l.scans {
							if s == http.StatusGatewayTimeout { // the step timed out
								l.scan(l.qr)
								return
							}
						}
					}()
					return
				}
				start = time.Now()
				l.stdin.Write(append(l.assertion(ev["options"], false), '\n'))
			case "pair_passkey_confirmation":
				if ev["skip_handoff_ux"] != false {
					t.Fatalf("confirmation %v: a proof went with the second request", ev)
				}
			}
		})
		if requests != 2 || indexOf(l.evs, "pair_passkey_confirmation") < 0 {
			t.Fatalf("requests %d, events %v\n%s", requests, eventNames(l.evs), l.stderr.String())
		}
		notLinked(t, l, start, "the passkey step's code must be confirmed: run on a terminal and press Enter, or pass --yes")
	})

	// No way to get an assertion at all.
	t.Run("no assertion", func(t *testing.T) {
		var start time.Time
		l := runPasskeyLink(t, info, nil, func(l *pkLink, ev map[string]any) {
			if ev["event"] == "pair_passkey_request" {
				start = time.Now()
			}
		})
		notLinked(t, l, start, "this account needs a passkey: get a WebAuthn assertion for these request options and pass it with --passkey-assertion FILE")
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
