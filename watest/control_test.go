package watest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func doJSON(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, url, err)
	}
	return resp.StatusCode, out
}

func TestControlAPI(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx := testCtx(t)
	base := s.ControlURL()

	code, cfg := doJSON(t, "GET", base+"/config", nil)
	if code != 200 || cfg["qr_refresh"] != true || cfg["ref_count"] != 6.0 || cfg["ref_ttl_first_s"] != 60.0 ||
		cfg["ref_ttl_next_s"] != 20.0 || cfg["pair_code_rate_limit"] != 0.0 || cfg["min_client_version"] != "" {
		t.Fatalf("GET /config = %d %v", code, cfg)
	}
	code, cfg = doJSON(t, "PUT", base+"/config", map[string]any{"qr_refresh": false, "ref_count": 3})
	if code != 200 || cfg["qr_refresh"] != false || cfg["ref_count"] != 3.0 || cfg["ref_ttl_first_s"] != 60.0 {
		t.Fatalf("PUT /config = %d %v", code, cfg)
	}
	for _, bad := range []map[string]any{{"ref_count": 0}, {"min_client_version": "two"}, {"no_such_knob": 1}, {"faults": map[string]any{"drop_after": "never"}}} {
		if code, out := doJSON(t, "PUT", base+"/config", bad); code != 400 || out["error"] == "" {
			t.Errorf("PUT /config %v = %d %v", bad, code, out)
		}
	}
	if sc := s.Scenario(); sc.RefCount != 3 || sc.QRRefresh {
		t.Fatalf("scenario after bad PUTs: %+v", sc)
	}

	c := newCompanion(t)
	w := c.mustConnect(ctx, s, c.registrationPayload())
	refs := w.pairDevice()
	if len(refs) != 3 {
		t.Fatalf("%d refs after PUT ref_count=3", len(refs))
	}
	phoneURL := base + "/phones/" + testNumber
	for _, tc := range []struct {
		qr   string
		want int
	}{{"garbage", 400}, {c.qr("2@nope"), 404}} {
		if code, out := doJSON(t, "POST", phoneURL+"/scan", map[string]string{"qr": tc.qr}); code != tc.want || out["error"] == nil {
			t.Errorf("scan %q = %d %v, want %d", tc.qr, code, out, tc.want)
		}
	}
	if code, _ := doJSON(t, "POST", base+"/phones/abc/scan", map[string]string{"qr": c.qr(refs[0])}); code != 400 {
		t.Errorf("bad phone = %d", code)
	}
	if code, out := doJSON(t, "POST", phoneURL+"/link-code", map[string]string{"code": "ABCD-1234"}); code != 404 || out["error"] == nil {
		t.Errorf("link-code without request = %d %v", code, out)
	}

	// postAsync, not doJSON: a goroutine must not call t.Fatal.
	res := postAsync(ctx, phoneURL+"/scan", map[string]string{"qr": c.qr(refs[0])})
	c.answerPairSuccess(w, c.advSecret, false)
	scan := <-res
	if scan.err != nil || scan.code != 200 || scan.out["device"] != c.id.String() || len(scan.out) != 1 {
		t.Fatalf("scan = %d %v %v", scan.code, scan.out, scan.err)
	}

	code, out := doJSON(t, "GET", phoneURL+"/devices", nil)
	devs, _ := out["devices"].([]any)
	if code != 200 || len(devs) != 1 {
		t.Fatalf("devices = %d %v", code, out)
	}
	d := devs[0].(map[string]any)
	if d["jid"] != c.id.String() || d["platform"] != "Chrome (Linux)" {
		t.Fatalf("device = %v", d)
	}
	if _, err := time.Parse(time.RFC3339, d["linked_at"].(string)); err != nil {
		t.Fatalf("linked_at: %v", err)
	}
	w.close()

	wl := c.login(ctx, s)
	if code, out := doJSON(t, "DELETE", phoneURL+"/devices/1", nil); code != 200 {
		t.Fatalf("DELETE = %d %v", code, out)
	}
	wl.expect("device_removed", isTag("stream:error"))
	if code, _ := doJSON(t, "DELETE", phoneURL+"/devices/1", nil); code != 404 {
		t.Fatalf("second DELETE = %d", code)
	}
	if code, _ := doJSON(t, "DELETE", phoneURL+"/devices/x", nil); code != 400 {
		t.Fatalf("DELETE bad device = %d", code)
	}

	// The node log: JSON lines, both directions, secrets redacted.
	resp, err := http.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var sawIn, sawPairSuccess bool
	hexKey := regexp.MustCompile(`[0-9a-f]{64}`)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		sawIn = sawIn || e.Dir == DirIn
		if e.Tag == "iq" && strings.Contains(e.XML, "<pair-success>") {
			sawPairSuccess = true
			if !strings.Contains(e.XML, "<device-identity>[redacted") {
				t.Errorf("pair-success not redacted: %s", e.XML)
			}
		}
		if hexKey.MatchString(e.XML) {
			t.Errorf("key-like hex in the log: %s", e.XML)
		}
	}
	if !sawIn || !sawPairSuccess {
		t.Fatalf("events: in=%v pair-success=%v", sawIn, sawPairSuccess)
	}
	if code, _ := doJSON(t, "GET", base+"/nope", nil); code != 404 {
		t.Fatalf("unknown path = %d", code)
	}
}

func TestEventsFollow(t *testing.T) {
	s := startServer(t, nil, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.ControlURL()+"/events?follow=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s.info(0, "marker")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "marker") {
			return
		}
	}
	t.Fatalf("follow ended without the marker: %v", sc.Err())
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestRunSim(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- RunSim(ctx, &out, Config{}) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatal("no first line")
		}
		time.Sleep(10 * time.Millisecond)
	}
	line := strings.SplitN(out.String(), "\n", 2)[0]
	var info map[string]string
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("first line %q: %v", line, err)
	}
	if !regexp.MustCompile(`^ws://127\.0\.0\.1:\d+/ws/chat$`).MatchString(info["ws_url"]) ||
		!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(info["root_public_key"]) ||
		!regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(info["control_url"]) ||
		info["version_url"] != info["control_url"]+"/sw.js" || len(info) != 4 {
		t.Fatalf("first line = %s", line)
	}
	resp, err := http.Get(info["control_url"] + "/config")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunSim: %v", err)
	}
}

func TestControlKickAndFaults(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	linkQR(ctx, t, s, c)
	url := s.ControlURL() + "/phones/" + testNumber + "/devices/1/kick"
	if code, out := doJSON(t, "POST", url, map[string]string{"kind": "515"}); code != 404 {
		t.Fatalf("kick offline = %d %v", code, out)
	}
	w := c.login(ctx, s)
	if code, out := doJSON(t, "POST", url, map[string]string{"kind": "sideways"}); code != 400 {
		t.Fatalf("kick bad kind = %d %v", code, out)
	}
	if code, out := doJSON(t, "POST", url, map[string]string{"kind": "replaced"}); code != 200 {
		t.Fatalf("kick = %d %v", code, out)
	}
	n := w.expect("conflict", isTag("stream:error"))
	if cf, ok := n.Child("conflict"); !ok || cf.Attr("type") != "replaced" {
		t.Fatalf("kick: %s", xmlString(n))
	}
	code, cfg := doJSON(t, "PUT", s.ControlURL()+"/config", map[string]any{"faults": map[string]any{"drop_after": "login", "delay_ms": 5}})
	faults, _ := cfg["faults"].(map[string]any)
	if code != 200 || faults["drop_after"] != "login" || s.Scenario().Faults.DelayMS != 5 || s.Scenario().QRRefresh {
		t.Fatalf("PUT faults = %d %v", code, cfg)
	}
}
