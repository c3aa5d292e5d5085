package watest

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walinkdev/walink/engine"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/noise"
	"github.com/walinkdev/walink/waversion"
)

// TestServiceWorker: /sw.js carries the web_revision knob in the shape of
// the real script, readable by waversion; 0 makes it 404; the knob is set
// by Go method, control API and flag.
func TestServiceWorker(t *testing.T) {
	s := startServer(t, nil, Config{})
	f := &waversion.Fetcher{URL: s.ControlURL() + "/sw.js"}
	if v, err := f.Fetch(testCtx(t)); err != nil || v != (engine.Version{2, 3000, DefaultWebRevision}) {
		t.Fatalf("default: %v %v", v, err)
	}
	resp, err := http.Get(s.ControlURL() + "/sw.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(string(body), `JSON.parse(`) || !strings.Contains(string(body), `\"client_revision\":1045368834`) {
		t.Fatalf("script: %s %q", resp.Header.Get("Content-Type"), body)
	}

	if err := s.SetWebRevision(1045369999); err != nil {
		t.Fatal(err)
	}
	if v, err := f.Fetch(testCtx(t)); err != nil || v[2] != 1045369999 {
		t.Fatalf("after SetWebRevision: %v %v", v, err)
	}
	if code, cfg := doJSON(t, "PUT", s.ControlURL()+"/config", map[string]any{"web_revision": 0}); code != 200 || cfg["web_revision"] != float64(0) {
		t.Fatalf("PUT web_revision=0: %d %v", code, cfg)
	}
	var fe *waversion.FetchError
	if _, err := f.Fetch(testCtx(t)); !errors.As(err, &fe) || fe.Status != 404 {
		t.Fatalf("web_revision 0: %v", err)
	}

	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	sc := DefaultScenario()
	sc.RegisterFlags(fs)
	if err := fs.Parse([]string{"--web-revision=77"}); err != nil || sc.WebRevision != 77 {
		t.Fatalf("--web-revision: %v %d", err, sc.WebRevision)
	}
	if err := fs.Parse([]string{"--web-revision=x"}); err == nil {
		t.Fatal("--web-revision=x accepted")
	}
}

// TestMinClientVersionAtRuntime: the minimum is raised by Go method and
// control API at any moment; a login below it gets 405, one at or above
// it success; a bad value is refused and changes nothing.
func TestMinClientVersionAtRuntime(t *testing.T) {
	s := startServer(t, func(sc *Scenario) { sc.QRRefresh = false }, Config{})
	ctx := testCtx(t)
	c := newCompanion(t)
	c.version = [3]uint32{2, 3000, 1045368834}
	linkQR(ctx, t, s, c)
	w := c.login(ctx, s)
	if err := s.SetMinClientVersion("2.3000.1045368835"); err != nil {
		t.Fatal(err)
	}
	if r := w.reply(w.iq("w:p", "get")); r.Attr("type") != "result" {
		t.Fatalf("connected device cut off: %s", xmlString(r))
	}
	w.close()
	expectLoginFailure(t, c, s, "405")
	awaitNote(t, s, "client version 2.3000.1045368834 older than 2.3000.1045368835")
	c.version[2] = 1045368835
	c.login(ctx, s).close()

	if err := s.SetMinClientVersion("soon"); !errors.Is(err, ErrBadScenario) || s.Scenario().MinClientVersion != "2.3000.1045368835" {
		t.Fatalf("bad version: %v, now %q", err, s.Scenario().MinClientVersion)
	}
	if code, cfg := doJSON(t, "PUT", s.ControlURL()+"/config", map[string]any{"min_client_version": "2.3000.1045368900"}); code != 200 || cfg["min_client_version"] != "2.3000.1045368900" {
		t.Fatalf("PUT min_client_version: %d %v", code, cfg)
	}
	expectLoginFailure(t, c, s, "405")
}

// TestRotateKey: the key changes, the chain certifies the new key under
// the same root, and the control API does the same.
func TestRotateKey(t *testing.T) {
	s := startServer(t, nil, Config{})
	old := s.StaticKey()
	pub, err := s.RotateKey()
	if err != nil || pub.Equal(old) || !s.StaticKey().Equal(pub) {
		t.Fatalf("rotate: %v", err)
	}
	s.mu.Lock()
	chain := s.chain
	s.mu.Unlock()
	if _, err := noise.ParseCertChain(chain, s.RootKey(), pub, time.Now()); err != nil {
		t.Fatalf("new chain: %v", err)
	}
	code, out := doJSON(t, "POST", s.ControlURL()+"/server/rotate-key", nil)
	if code != 200 || out["static"] == pub.String() || out["static"] != s.StaticKey().String() {
		t.Fatalf("control API: %d %v", code, out)
	}
}

// TestRotateKeyPersists: a server with a state dir keeps the rotated key.
func TestRotateKeyPersists(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, nil, Config{StateDir: dir})
	pub, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := startServer(t, nil, Config{StateDir: dir})
	if !s2.StaticKey().Equal(pub) {
		t.Fatal("the rotated key did not survive a restart")
	}
}

// TestProvision: a provisioned device logs in like a paired one (XX, then
// IK), and another noise key with its JID does not.
func TestProvision(t *testing.T) {
	s := startServer(t, nil, Config{})
	c := newCompanion(t)
	id, err := s.Phone(testNumber).Provision(c.noise.Public, c.identity.Public, c.regID, c.spk)
	if err != nil {
		t.Fatal(err)
	}
	c.id, c.lid = id, jid.JID{}
	c.resume = cacheFromLogin(t, s, c)
	w := c.login(testCtx(t), s)
	if w.tc.Mode() != noise.ModeIK {
		t.Fatalf("resume of a provisioned device: %v", w.tc.Mode())
	}
	w.close()
	other := newCompanion(t)
	other.id = id
	expectLoginFailure(t, other, s, "401")
	if devs := s.Phone(testNumber).Devices(); len(devs) != 1 || devs[0].JID != id {
		t.Fatalf("devices %+v", devs)
	}
}
