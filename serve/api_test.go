package serve

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/internal/qrimage"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/watest"
)

// TestQRLink: create a session, follow it by SSE, fetch the QR in all
// three formats (the PNG and SVG carry the same string as the JSON), have
// the local WhatsApp's phone scan it, see it connected; the QR route then
// answers 409 with the status, never an empty 200.
func TestQRLink(t *testing.T) { testQRLink(t, false) }

func TestQRLinkPostgres(t *testing.T) { testQRLink(t, true) }

func testQRLink(t *testing.T, pg bool) {
	e := newEnv(t, envOpts{postgres: pg})
	events := e.stream("/v1/events", "")
	v := e.must(201, "POST", "/v1/sessions", map[string]any{"name": "support desk"})
	id := v["id"].(string)
	if v["name"] != "support desk" || v["status"] != "starting" {
		t.Fatalf("created: %v", v)
	}
	events.next(t, 10*time.Second, isStatus(id, StatusScanQR))
	q := e.must(200, "GET", "/v1/sessions/"+id+"/qr", nil, "Accept", "application/json")
	qr := q["qr"].(string)
	if !strings.Contains(qr, ",") {
		t.Fatalf("qr %q", qr)
	}
	code, h, png := e.do("GET", "/v1/sessions/"+id+"/qr", nil, "Accept", "image/png")
	if code != 200 || h.Get("Content-Type") != "image/png" {
		t.Fatalf("png: %d %s", code, h.Get("Content-Type"))
	}
	if got, err := qrimage.DecodePNG(png); err != nil || got != qr {
		t.Fatalf("decoded png %q (%v), want %q", got, err, qr)
	}
	code, h, svg := e.do("GET", "/v1/sessions/"+id+"/qr?format=svg", nil)
	if code != 200 || h.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(svg), "<svg") {
		t.Fatalf("svg: %d %s", code, h.Get("Content-Type"))
	}
	e.problem(406, "not-acceptable", "GET", "/v1/sessions/"+id+"/qr?format=gif", nil)

	dev, err := e.srv.Phone("15550001111").ScanQR(t.Context(), qr)
	for errors.Is(err, watest.ErrRescan) {
		// The server rotated the adv secret; the page shows the new code.
		ev := events.next(t, 10*time.Second, func(ev sseEvent) bool { return ev.Name == "pairing_qr_code" && ev.Data["code"] != qr })
		qr = ev.Data["code"].(string)
		dev, err = e.srv.Phone("15550001111").ScanQR(t.Context(), qr)
	}
	if err != nil {
		t.Fatal(err)
	}
	ps := events.next(t, 10*time.Second, func(ev sseEvent) bool { return ev.Name == "pair_success" })
	if ps.Data["id"] != dev.String() || ps.Data["platform"] == "" {
		t.Fatalf("pair_success %v, phone linked %v", ps.Data, dev)
	}
	events.next(t, 10*time.Second, isStatus(id, StatusConnected))
	s := e.must(200, "GET", "/v1/sessions/"+id, nil)
	if s["phone"] != "15550001111" || s["device"] != dev.String() || s["running"] != true {
		t.Fatalf("linked session: %v", s)
	}
	var seen []string
	for _, tr := range s["transitions"].([]any) {
		seen = append(seen, tr.(map[string]any)["status"].(string))
	}
	if got := strings.Join(seen, ","); got != "disconnected,starting,scan_qr,starting,connected" {
		t.Fatalf("transitions %s", got)
	}
	p := e.problem(409, "not-scanning", "GET", "/v1/sessions/"+id+"/qr", nil, "Accept", "image/png")
	if p["session_status"] != "connected" {
		t.Fatalf("409 problem: %v", p)
	}
	_, _, m := e.do("GET", "/metrics", nil)
	for _, want := range []string{`walink_pairings_started_total{method="qr"} 1`, `walink_pairings_linked_total{method="qr"} 1`,
		`walink_sessions{status="connected"} 1`, "walink_link_duration_seconds_count 1", "walink_handshake_duration_seconds_count 1"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The list shows it too.
	l := e.must(200, "GET", "/v1/sessions", nil)
	if n := len(l["sessions"].([]any)); n != 1 {
		t.Fatalf("%d sessions", n)
	}
}

// TestPairCode: the pair-code route with its typed errors, then the
// phone types the code and the session links.
func TestPairCode(t *testing.T) {
	e := newEnv(t, envOpts{})
	id := e.must(201, "POST", "/v1/sessions", nil)["id"].(string)
	e.waitStatus(id, StatusScanQR, 10*time.Second)
	e.problem(422, "invalid-phone-number", "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "0123"})
	e.problem(422, "invalid-phone-number", "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": ""})
	e.problem(422, "invalid-custom-code", "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "+1 555 000 2222", "code": "short"})
	e.problem(400, "bad-request", "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "15550002222", "pin": "x"})
	pc := e.must(200, "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "+1 555 000 2222", "push": true})
	code := pc["code"].(string)
	if len(code) != 8 {
		t.Fatalf("code %q", code)
	}
	if exp, _ := time.Parse(time.RFC3339Nano, pc["expires_at"].(string)); time.Until(exp) < 2*time.Minute {
		t.Fatalf("expires_at %v", exp)
	}
	e.problem(409, "code-outstanding", "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "15550002222"})
	s := e.waitStatus(id, StatusPairCode, 5*time.Second)
	if s["pair_code"].(map[string]any)["code"] != code {
		t.Fatalf("session pair_code %v", s["pair_code"])
	}
	e.problem(409, "not-scanning", "GET", "/v1/sessions/"+id+"/qr", nil)
	if _, err := e.srv.Phone("15550002222").EnterCode(t.Context(), code); err != nil {
		t.Fatal(err)
	}
	s = e.waitStatus(id, StatusConnected, 15*time.Second)
	if s["phone"] != "15550002222" {
		t.Fatalf("linked: %v", s)
	}
	e.problem(409, "already-linked", "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "15550002222"})
}

// TestPairCodeRefusals: WhatsApp's throttle becomes 429 with Retry-After,
// "feature not available" a 422 that says to use the QR.
func TestPairCodeRefusals(t *testing.T) {
	for _, c := range []struct {
		code   int
		status int
		typ    string
	}{{429, 429, "rate-limited"}, {400, 429, "rate-limited"}, {452, 422, "feature-not-available"}, {403, 502, "pair-code-rejected"}} {
		e := newEnv(t, envOpts{scenario: func(sc *watest.Scenario) { sc.PairCodeError = c.code }})
		id := e.must(201, "POST", "/v1/sessions", nil)["id"].(string)
		e.waitStatus(id, StatusScanQR, 10*time.Second)
		code, h, b := e.do("POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "15550003333"})
		var p map[string]any
		json.Unmarshal(b, &p)
		if code != c.status || p["type"] != "urn:walink:problem:"+c.typ {
			t.Fatalf("server %d: %d %s, want %d %s", c.code, code, b, c.status, c.typ)
		}
		if c.status == 429 && (h.Get("Retry-After") != "60" || p["retry_after"] != float64(60)) {
			t.Fatalf("server %d: Retry-After %q, body %s", c.code, h.Get("Retry-After"), b)
		}
		e.stop()
	}
}

// TestLifecycleRoutes: stop and start keep the link; logout unlinks on
// WhatsApp; delete logs out first and removes everything.
func TestLifecycleRoutes(t *testing.T) {
	e := newEnv(t, envOpts{})
	id := e.linkQR("15550004444")
	phone := e.srv.Phone("15550004444")
	if n := len(phone.Devices()); n != 1 {
		t.Fatalf("phone lists %d devices", n)
	}
	s := e.must(200, "POST", "/v1/sessions/"+id+"/stop", nil)
	if s["status"] != "disconnected" || s["running"] != false || s["reason"] != "stopped" {
		t.Fatalf("stopped: %v", s)
	}
	e.must(200, "POST", "/v1/sessions/"+id+"/start", nil)
	e.waitStatus(id, StatusConnected, 10*time.Second)
	e.must(200, "POST", "/v1/sessions/"+id+"/start", nil) // idempotent
	s = e.must(200, "POST", "/v1/sessions/"+id+"/logout", nil)
	if s["status"] != "logged_out" || s["device"] != nil {
		t.Fatalf("logged out: %v", s)
	}
	if n := len(phone.Devices()); n != 0 {
		t.Fatalf("phone still lists %d devices", n)
	}
	if devs, _ := e.st.Devices(t.Context()); len(devs) != 0 {
		t.Fatalf("store keeps %d devices", len(devs))
	}
	e.problem(409, "wrong-status", "POST", "/v1/sessions/"+id+"/logout", nil)

	// A second account: delete while linked (and stopped: delete connects
	// to log out first).
	id2 := e.linkQR("15550005555")
	e.must(200, "POST", "/v1/sessions/"+id2+"/stop", nil)
	e.must(204, "DELETE", "/v1/sessions/"+id2, nil)
	if n := len(e.srv.Phone("15550005555").Devices()); n != 0 {
		t.Fatalf("deleted session still linked on the phone (%d)", n)
	}
	e.problem(404, "not-found", "GET", "/v1/sessions/"+id2, nil)
	e.problem(404, "not-found", "DELETE", "/v1/sessions/"+id2, nil)
	e.must(204, "DELETE", "/v1/sessions/"+id, nil) // not linked: just deleted
	if l := e.must(200, "GET", "/v1/sessions", nil); len(l["sessions"].([]any)) != 0 {
		t.Fatalf("sessions left: %v", l)
	}
}

// TestLoggedOutFromPhone: the phone removes the device; the session
// says logged_out and forgets the device.
func TestLoggedOutFromPhone(t *testing.T) {
	e := newEnv(t, envOpts{})
	id := e.linkQR("15550006666")
	s := e.must(200, "GET", "/v1/sessions/"+id, nil)
	d, _ := jid.Parse(s["device"].(string))
	if err := e.srv.Phone("15550006666").Unlink(t.Context(), d.Device); err != nil {
		t.Fatal(err)
	}
	s = e.waitStatus(id, StatusLoggedOut, 10*time.Second)
	if s["device"] != nil || s["running"] != false {
		t.Fatalf("after unlink: %v", s)
	}
}

// TestRequestErrors: every documented request error.
func TestRequestErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.problem(401, "unauthorized", "GET", "/v1/sessions", nil, "Authorization", "")
	e.problem(401, "unauthorized", "GET", "/v1/sessions", nil, "Authorization", "Bearer wrong-key-0123456789")
	e.problem(401, "unauthorized", "GET", "/v1/openapi.json", nil, "Authorization", "")
	e.must(200, "GET", "/v1/sessions", nil, "Authorization", "", "X-Api-Key", testKey)
	e.problem(400, "bad-request", "POST", "/v1/sessions", `{"name": 1}`)
	e.problem(400, "bad-request", "POST", "/v1/sessions", `{"nam": "x"}`)
	e.problem(400, "bad-request", "POST", "/v1/sessions", `{} {}`)
	e.problem(413, "body-too-large", "POST", "/v1/sessions", `{"name":"`+strings.Repeat("x", maxBody)+`"}`)
	e.problem(415, "unsupported-media-type", "POST", "/v1/sessions", `name=x`, "Content-Type", "application/x-www-form-urlencoded")
	e.problem(422, "invalid-field", "POST", "/v1/sessions", map[string]any{"name": strings.Repeat("n", 101)})
	e.problem(422, "invalid-field", "POST", "/v1/sessions", map[string]any{"webhook": map[string]any{"url": "ftp://x"}})
	e.problem(422, "invalid-field", "POST", "/v1/sessions", map[string]any{"webhook": map[string]any{"url": "http://x/", "events": []string{"nope"}}})
	e.problem(404, "not-found", "GET", "/v1/nothing-here", nil)
	if _, h, _ := e.do("PUT", "/v1/sessions", nil); h.Get("Allow") != "POST, GET" {
		t.Fatalf("Allow %q", h.Get("Allow"))
	}
	e.problem(405, "method-not-allowed", "PATCH", "/v1/sessions/s_x", nil)
	for _, p := range []string{"", "/qr", "/events"} {
		e.problem(404, "not-found", "GET", "/v1/sessions/s_missing"+p, nil)
	}
	for _, p := range []string{"/logout", "/start", "/stop", "/pair-code", "/passkey/confirm"} {
		e.problem(404, "not-found", "POST", "/v1/sessions/s_missing"+p, map[string]any{"phone": "15550000000"})
	}
	id := e.must(201, "POST", "/v1/sessions", map[string]any{"start": false})["id"].(string)
	e.problem(409, "not-scanning", "GET", "/v1/sessions/"+id+"/qr", nil)
	e.problem(409, "wrong-status", "POST", "/v1/sessions/"+id+"/pair-code", map[string]any{"phone": "15550000000"})
	e.problem(501, "passkey-not-available", "GET", "/v1/sessions/"+id+"/passkey", nil)
	e.problem(501, "passkey-not-available", "POST", "/v1/sessions/"+id+"/passkey/response", map[string]any{})
	e.problem(501, "passkey-not-available", "POST", "/v1/sessions/"+id+"/passkey/confirm", nil)
	e.problem(404, "sim-not-enabled", "POST", "/v1/sessions/"+id+"/sim/scan", map[string]any{"phone": "15550000000"})
	e.problem(404, "sim-not-enabled", "POST", "/v1/sessions/"+id+"/sim/enter-code", map[string]any{"phone": "15550000000"})
	e.problem(400, "bad-request", "GET", "/v1/events", nil, "Last-Event-ID", "abc")
	e.problem(400, "bad-request", "GET", "/v1/sessions/"+id+"/events", nil, "Last-Event-ID", "-4")
	// Health is open; metrics are not.
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, _ := e.do("GET", p, nil, "Authorization", ""); code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
	}
	e.problem(401, "unauthorized", "GET", "/metrics", nil, "Authorization", "")
	if _, _, b := e.do("GET", "/metrics", nil); !strings.Contains(string(b), `walink_sessions{status="disconnected"} 1`) {
		t.Fatalf("metrics: %s", b)
	}
	// Documented schema of the OpenAPI document route itself.
	if d := e.must(200, "GET", "/v1/openapi.json", nil); d["openapi"] != "3.1.0" {
		t.Fatal("openapi.json")
	}
}
