package clientcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/store/memstore"
	"github.com/walinkdev/walink/watest"
)

const phone = "15557654321"

// events collects client events for waiting.
type events struct {
	mu   sync.Mutex
	all  []walink.Event
	wake chan struct{}
}

func (e *events) add(ev walink.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	close(e.wake)
	e.wake = make(chan struct{})
	e.mu.Unlock()
}

func await[T walink.Event](t *testing.T, e *events, from *int) T {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		for i := *from; i < len(e.all); i++ {
			if v, ok := e.all[i].(T); ok {
				*from = i + 1
				e.mu.Unlock()
				return v
			}
		}
		wake := e.wake
		e.mu.Unlock()
		select {
		case <-wake:
		case <-timeout:
			var zero T
			t.Fatalf("timeout waiting for %T", zero)
		}
	}
}

func post(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func newClient(t *testing.T, s *watest.Server) (*walink.Client, *events) {
	ev := &events{wake: make(chan struct{})}
	cli := walink.NewClient(memstore.New(), walink.Config{
		ServerURL: s.URL(), ServerRoot: s.RootKey(),
		Reconnect: walink.ReconnectPolicy{MinDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond},
	})
	cli.AddEventHandler(ev.add)
	t.Cleanup(func() { cli.Close() })
	return cli, ev
}

// TestQRThroughControlAPI links by QR with scans posted to the control API
// (including the rescan companion_reg_refresh asks for), then unlinks with
// DELETE and expects the client to be logged out.
func TestQRThroughControlAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cli, ev := newClient(t, s)
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	qr := await[walink.PairingQRCode](t, ev, &from)
	code, out := post(t, "POST", s.ControlURL()+"/phones/"+phone+"/scan", map[string]string{"qr": qr.Code})
	if code != http.StatusConflict {
		t.Fatalf("first scan = %d %v, want 409 (rescan)", code, out)
	}
	qr = await[walink.PairingQRCode](t, ev, &from)
	code, out = post(t, "POST", s.ControlURL()+"/phones/"+phone+"/scan", map[string]string{"qr": qr.Code})
	if code != 200 {
		t.Fatalf("rescan = %d %v", code, out)
	}
	ps := await[walink.PairSuccess](t, ev, &from)
	if out["device"] != ps.ID.String() {
		t.Fatalf("control API linked %v, client got %v", out["device"], ps.ID)
	}
	await[walink.Connected](t, ev, &from)

	code, out = post(t, "GET", s.ControlURL()+"/phones/"+phone+"/devices", nil)
	if devs, _ := out["devices"].([]any); code != 200 || len(devs) != 1 {
		t.Fatalf("devices = %d %v", code, out)
	}
	code, out = post(t, "DELETE", s.ControlURL()+"/phones/"+phone+"/devices/"+itoa(ps.ID.Device), nil)
	if code != 200 {
		t.Fatalf("unlink = %d %v", code, out)
	}
	lo := await[walink.LoggedOut](t, ev, &from)
	if lo.OnConnect {
		t.Fatalf("LoggedOut = %+v, want OnConnect false", lo)
	}
}

// TestCodeThroughControlAPI links with a pair code typed through the
// control API, reconnects, and logs out from the client.
func TestCodeThroughControlAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cli, ev := newClient(t, s)
	from := 0
	if err := cli.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := cli.PairWithCode(ctx, walink.PairCodeOptions{PhoneNumber: phone})
	if err != nil {
		t.Fatal(err)
	}
	code, out := post(t, "POST", s.ControlURL()+"/phones/"+phone+"/link-code", map[string]string{"code": pc[:4] + "-" + pc[4:]})
	if code != 200 {
		t.Fatalf("link-code = %d %v", code, out)
	}
	ps := await[walink.PairSuccess](t, ev, &from)
	await[walink.Connected](t, ev, &from)
	if out["device"] != ps.ID.String() {
		t.Fatalf("control API linked %v, client got %v", out["device"], ps.ID)
	}
	if err := cli.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if n := len(s.Phone(phone).Devices()); n != 0 {
		t.Fatalf("%d devices after logout", n)
	}
	if _, err := s.Phone(phone).EnterCode(ctx, pc); !errors.Is(err, watest.ErrNoPendingCode) {
		t.Fatalf("code reused: %v", err)
	}
}

func itoa(n uint16) string {
	b, _ := json.Marshal(n)
	return string(b)
}
