package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeSim runs `walink serve --sim` as a process: the API links an
// account with the virtual phone, SIGTERM stops it cleanly (exit 0), and
// the generated API key is printed once on stdout, never in the log.
func TestServeSim(t *testing.T) {
	cmd := walinkCmd(context.Background(), t, "serve", "--sim", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	}()
	rd := bufio.NewReader(stdout)
	first, _ := rd.ReadString('\n')
	second, _ := rd.ReadString('\n')
	go io.Copy(io.Discard, rd)
	base := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(first, "walink serve: open ")), "/")
	key := second[strings.LastIndex(second, " ")+1 : len(second)-1]
	if !strings.HasPrefix(base, "http://127.0.0.1:") || len(key) != 32 {
		t.Fatalf("output %q %q", first, second)
	}
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return doJSON(t, req)
	}
	code, s := call("POST", "/v1/sessions", `{"name":"demo"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, s)
	}
	id := s["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, s = call("GET", "/v1/sessions/"+id, "")
		if s["status"] == "connected" {
			break
		}
		if s["status"] == "scan_qr" {
			call("POST", "/v1/sessions/"+id+"/sim/scan", `{"phone":"15550001212"}`) // the first scan rotates the QR
		}
		if time.Now().After(deadline) {
			t.Fatalf("not linked: %v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s["phone"] != "15550001212" {
		t.Fatalf("linked %v", s)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", waitErr, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit 20s after SIGTERM")
	}
	if strings.Contains(logs.String(), key) {
		t.Fatal("the API key is in the log")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestServeRefuses(t *testing.T) {
	keyFile := t.TempDir() + "/keys"
	os.WriteFile(keyFile, []byte("a-long-enough-api-key\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listen", "0.0.0.0:0", "--api-key-file", keyFile}, "non-loopback"},
		{[]string{"serve", "--listen", "127.0.0.1:0"}, "no API key"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--tls-cert", "x"}, "go together"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--api-key-file", keyFile, "--webhook-url", "http://x/"}, "needs a secret"},
	} {
		_, stderr, code := runWalink(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q", c.args, code, stderr)
		}
	}
}
