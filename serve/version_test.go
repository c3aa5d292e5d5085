package serve

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/watest"
)

// TestClientOutdatedRecovers: WhatsApp starts refusing the version a
// linked session logs in with (failure 405). The service's client fetches
// the current WhatsApp Web version and reconnects by itself: the session
// is connected again and no client_outdated event or failed status is
// ever reported. When WhatsApp also refuses the version just fetched, the
// session fails with reason client_outdated and the event says why.
func TestClientOutdatedRecovers(t *testing.T) {
	srv, err := watest.Start(t.Context(), watest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := newEnv(t, envOpts{srv: srv, mutate: func(c *Config) {
		c.Client.VersionURL = srv.VersionURL()
		c.Client.VersionFetchTimeout = 5 * time.Second
	}})
	id := e.linkQR("15550107001")
	dev := e.waitStatus(id, StatusConnected, 10*time.Second)["device"].(string)
	d, err := jid.Parse(dev)
	if err != nil {
		t.Fatal(err)
	}
	st := e.stream("/v1/events", "")
	defer st.close()

	if err := srv.SetWebRevision(watest.DefaultWebRevision + 9); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetMinClientVersion("2.3000.1045368843"); err != nil {
		t.Fatal(err)
	}
	refused := countInfo(srv, "older than")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Kick(ctx, d, "503"); err != nil {
		t.Fatal(err)
	}
	// The next login is refused (405), then the fetched version logs in.
	st.next(t, 20*time.Second, func(ev sseEvent) bool {
		if ev.Data["session_id"] == id && (ev.Name == "client_outdated" || (ev.Name == "status" && ev.Data["status"] == string(StatusFailed))) {
			t.Fatalf("recoverable 405 reported: %s %v", ev.Name, ev.Data)
		}
		return ev.Name == "status" && ev.Data["session_id"] == id && ev.Data["status"] == string(StatusConnected)
	})
	if n := countInfo(srv, "older than") - refused; n != 1 {
		t.Fatalf("%d logins refused as outdated, want 1", n)
	}
	e.waitStatus(id, StatusConnected, 5*time.Second)

	// WhatsApp refuses the version just fetched: within a minute of the
	// fetch that is final (engine.VersionRefetchGuard), with no second
	// fetch loop; the session fails and says which version was refused.
	if err := srv.SetMinClientVersion("2.3000.1045368999"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kick(ctx, d, "503"); err != nil {
		t.Fatal(err)
	}
	ev := st.next(t, 20*time.Second, func(ev sseEvent) bool {
		return ev.Name == "client_outdated" && ev.Data["session_id"] == id
	})
	if msg, _ := ev.Data["message"].(string); !strings.Contains(msg, "refuses client version 2.3000.1045368843") {
		t.Fatalf("client_outdated message %q does not say why", msg)
	}
	v := e.waitStatus(id, StatusFailed, 10*time.Second)
	// It stays failed: the client does not reconnect, and its last
	// Disconnected must not read as "reconnecting".
	time.Sleep(300 * time.Millisecond)
	v = e.waitStatus(id, StatusFailed, time.Second)
	if v["reason"] != "client_outdated" {
		t.Fatalf("failed with reason %v, want client_outdated", v["reason"])
	}
}

func countInfo(srv *watest.Server, sub string) int {
	n := 0
	for _, e := range srv.Events() {
		if e.Dir == watest.DirInfo && strings.Contains(e.Note, sub) {
			n++
		}
	}
	return n
}
