package serve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/walinkdev/walink/watest"
)

// TestClientPasskeyAgainstWatest: walink serve's passkey routes on the
// client's API, against the local WhatsApp's passkey step after a QR scan:
// the options the route hands out are the request's, a refused assertion
// (another challenge) is a 422 problem and the step stays live, the right
// one and the confirm route link the session; meanwhile the session
// object shows the confirmation code.
func TestClientPasskeyAgainstWatest(t *testing.T) {
	const phone = "15550002222"
	e := newEnv(t, envOpts{
		scenario: func(sc *watest.Scenario) { sc.Passkey = watest.PasskeyQR },
		mutate:   func(c *Config) { c.Passkey = ClientPasskey{} },
	})
	id := e.must(201, "POST", "/v1/sessions", map[string]any{"name": "passkey"})["id"].(string)
	e.waitStatus(id, StatusScanQR, 10*time.Second)
	e.problem(409, "wrong-status", "GET", "/v1/sessions/"+id+"/passkey", nil)

	// Scan (through the reg refresh); the scan answers when linking ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qrOf := func() string {
		var q QRView
		_, _, b := e.do("GET", "/v1/sessions/"+id+"/qr", nil, "Accept", "application/json")
		json.Unmarshal(b, &q)
		return q.QR
	}
	qr := qrOf()
	if _, err := e.srv.Phone(phone).ScanQR(ctx, qr); !errors.Is(err, watest.ErrRescan) {
		t.Fatalf("first scan: %v", err)
	}
	for next := qrOf(); ; next = qrOf() {
		if next != "" && next != qr {
			qr = next
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	scanned := make(chan error, 1)
	go func() { _, err := e.srv.Phone(phone).ScanQR(ctx, qr); scanned <- err }()

	e.waitStatus(id, StatusPasskeyRequired, 10*time.Second)
	o := e.must(200, "GET", "/v1/sessions/"+id+"/passkey", nil)["public_key"].(map[string]any)
	if o["rpId"] != "whatsapp.com" || o["challenge"] == nil {
		t.Fatalf("options %v", o)
	}
	assert := func(opts map[string]any) map[string]any {
		b, _ := json.Marshal(opts)
		a, err := e.srv.Phone(phone).Assert(b)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(a, &m)
		return m
	}
	other := map[string]any{}
	for k, v := range o {
		other[k] = v
	}
	other["challenge"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	p := e.problem(422, "invalid-field", "POST", "/v1/sessions/"+id+"/passkey/response", assert(other))
	t.Logf("refused: %v", p["detail"])
	e.waitStatus(id, StatusPasskeyRequired, 5*time.Second)

	e.must(200, "POST", "/v1/sessions/"+id+"/passkey/response", assert(o))
	e.waitStatus(id, StatusPasskeyConfirm, 10*time.Second)
	// The session object keeps the code of the passkey_confirm event (a
	// page reloaded after the event shows it from there).
	evs, err := e.svc.db.eventsAfter(ctx, id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	code := ""
	for _, ev := range evs {
		if ev.Name == "passkey_confirm" {
			code, _ = ev.Data["code"].(string)
		}
	}
	pk, _ := e.must(200, "GET", "/v1/sessions/"+id, nil)["passkey"].(map[string]any)
	if code == "" || pk["code"] != code || pk["skip_handoff_ux"] != true {
		t.Fatalf("session's passkey %v, event's code %q", pk, code)
	}
	e.must(200, "POST", "/v1/sessions/"+id+"/passkey/confirm", nil)
	if s := e.waitStatus(id, StatusConnected, 20*time.Second); s["passkey"] != nil {
		t.Fatalf("linked session still shows the passkey step: %v", s)
	}
	if err := <-scanned; err != nil {
		t.Fatalf("scan: %v", err)
	}
}
