package serve

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
)

// recordingPasskey is a stand-in driver: it records what the routes pass
// on. The real driver (issue 16) implements the same interface.
type recordingPasskey struct {
	mu        sync.Mutex
	responses []string
	confirms  int
}

func (p *recordingPasskey) Options(context.Context, *walink.Client) (json.RawMessage, error) {
	return json.RawMessage(`{"challenge":"AAEC","rpId":"whatsapp.com","allowCredentials":[{"type":"public-key","id":"AQI"}]}`), nil
}

func (p *recordingPasskey) Respond(_ context.Context, _ *walink.Client, a json.RawMessage) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.responses = append(p.responses, string(a))
	return nil
}

func (p *recordingPasskey) Confirm(context.Context, *walink.Client) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.confirms++
	return nil
}

func (p *recordingPasskey) Classify(walink.Event) (string, map[string]any, Status, bool) {
	return "", nil, "", false
}

// TestPasskeyRoutes: with a Passkey driver, the routes answer while the
// session waits for the passkey and pass the browser's assertion on;
// otherwise they answer 409 with the status.
func TestPasskeyRoutes(t *testing.T) {
	pk := &recordingPasskey{}
	e := newEnv(t, envOpts{mutate: func(c *Config) { c.Passkey = pk }})
	id := e.must(201, "POST", "/v1/sessions", nil)["id"].(string)
	e.waitStatus(id, StatusScanQR, 10*time.Second)
	e.problem(409, "wrong-status", "GET", "/v1/sessions/"+id+"/passkey", nil)
	// The phone asks for the passkey (the driver's event would do this).
	ss := e.svc.get(id)
	e.svc.apply(ss, 0, func(r *record) []StoredEvent { return e.svc.setStatus(r, StatusPasskeyRequired, "") })
	o := e.must(200, "GET", "/v1/sessions/"+id+"/passkey", nil)
	if o["public_key"].(map[string]any)["rpId"] != "whatsapp.com" {
		t.Fatalf("options %v", o)
	}
	e.must(200, "POST", "/v1/sessions/"+id+"/passkey/response", map[string]any{"id": "AQI", "type": "public-key"})
	e.svc.apply(ss, 0, func(r *record) []StoredEvent { return e.svc.setStatus(r, StatusPasskeyConfirm, "") })
	if s := e.must(200, "POST", "/v1/sessions/"+id+"/passkey/confirm", nil); s["status"] != "passkey_confirm" {
		t.Fatalf("confirm: %v", s)
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if len(pk.responses) != 1 || pk.confirms != 1 {
		t.Fatalf("driver saw %v, %d confirms", pk.responses, pk.confirms)
	}
}
