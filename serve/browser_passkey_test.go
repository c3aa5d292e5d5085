package serve

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/walinkdev/walink/internal/artifacts"
	"github.com/walinkdev/walink/watest"
)

// TestBrowserPasskey drives the passkey step in real headless Chromium
// against the local WhatsApp's passkey scenario: the page explains the
// step, "Use my passkey" runs the page's own WebAuthn code, the
// confirmation code appears and the phone's user types it (the phone
// checks it), the confirm button links, the page switches
// to the linked view.
//
// Headless Chromium has no authenticator holding the account's passkey
// (the local WhatsApp's phone holds it, and the CDP virtual authenticator
// cannot sign with a key it did not create for this origin and rp), so
// the test stands in for the authenticator only: navigator.credentials.get
// answers with the assertion the phone's passkey makes (Phone.Assert) over
// the options the page fetched. Everything around it (decoding the
// options, encoding the assertion, the routes, the events, the views) is
// the page's real code.
func TestBrowserPasskey(t *testing.T) {
	const phone = "15550007777"
	e := newEnv(t, envOpts{
		scenario: func(sc *watest.Scenario) { sc.Passkey = watest.PasskeyQR; sc.PasskeyConfirm = "manual" },
		mutate:   func(c *Config) { c.Passkey = ClientPasskey{} },
	})
	ctx := browser(t, 1000, 1100)
	p := page{t: t, ctx: ctx, dir: artifacts.Dir(t), failPrefix: "failed-passkey-"}
	shot, run, text := p.shot, p.run, p.text

	run("sign in", chromedp.Navigate(e.http.URL+"/"), chromedp.WaitVisible("#key"),
		chromedp.SendKeys("#key", testKey), chromedp.Click("#signin"), chromedp.WaitVisible("#new-session"))
	run("new session", chromedp.Click("#new-session"), chromedp.WaitVisible("#qr-img"))
	id := e.newest()

	// The phone scans (through the reg refresh, as in
	// TestClientPasskeyAgainstWatest); the scan answers when linking ends.
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qrOf := func() string {
		var q QRView
		_, _, b := e.do("GET", "/v1/sessions/"+id+"/qr", nil, "Accept", "application/json")
		json.Unmarshal(b, &q)
		return q.QR
	}
	qr := qrOf()
	if _, err := e.srv.Phone(phone).ScanQR(sctx, qr); !errors.Is(err, watest.ErrRescan) {
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
	go func() { _, err := e.srv.Phone(phone).ScanQR(sctx, qr); scanned <- err }()

	// The page explains the step.
	run("passkey view", chromedp.WaitVisible("#passkey-view"), chromedp.WaitVisible("#passkey-go"), shot("09-passkey-required"))
	if v := text("#passkey-view"); !strings.Contains(v, "passkey") || !strings.Contains(v, "confirm on the phone") {
		t.Fatalf("passkey view says %q", v)
	}
	if v := text("#link-status"); v != "Passkey needed" {
		t.Fatalf("status shows %q", v)
	}

	// The phone's passkey signs the live request; the page's
	// navigator.credentials.get hands it over and records the challenge
	// the page decoded, to check the page passed the options on intact.
	o := e.must(200, "GET", "/v1/sessions/"+id+"/passkey", nil)["public_key"].(map[string]any)
	ob, _ := json.Marshal(o)
	a, err := e.srv.Phone(phone).Assert(ob)
	if err != nil {
		t.Fatal(err)
	}
	stub := `(() => {
  const a = ` + string(a) + `;
  const d = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer;
  const e = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  navigator.credentials.get = async (o) => {
    window.walinkTestChallenge = e(o.publicKey.challenge);
    window.walinkTestRpId = o.publicKey.rpId;
    return { id: a.id, rawId: d(a.rawId), type: a.type, response: {
      clientDataJSON: d(a.response.clientDataJSON), authenticatorData: d(a.response.authenticatorData),
      signature: d(a.response.signature), userHandle: a.response.userHandle ? d(a.response.userHandle) : null } };
  };
  return true;
})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](stub)); err != nil {
		t.Fatalf("installing the authenticator stand-in: %v", err)
	}
	run("use passkey", chromedp.Click("#passkey-go"), chromedp.WaitVisible("#passkey-confirm-view"),
		poll(`document.getElementById("passkey-code").textContent.length > 0`), shot("10-passkey-confirm"))
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.walinkTestChallenge`)); err != nil || got != o["challenge"] {
		t.Fatalf("the page passed challenge %q (%v), want %q", got, err, o["challenge"])
	}
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.walinkTestRpId`)); got != "whatsapp.com" {
		t.Fatalf("the page passed rpId %q", got)
	}
	if v := text("#passkey-error"); v != "" {
		t.Fatalf("passkey error shown: %q", v)
	}
	code := text("#passkey-code")
	if v := text("#link-status"); v != "Confirm on your phone" {
		t.Fatalf("status shows %q", v)
	}
	t.Logf("confirmation code on the page: %q", code)
	// A reload loses the event; the session object still has the code.
	run("reload", chromedp.Reload(), chromedp.WaitVisible(`li[data-id="`+id+`"] .actions button`),
		chromedp.Click(`li[data-id="`+id+`"] .actions button`), chromedp.WaitVisible("#passkey-confirm-view"),
		poll(`document.getElementById("passkey-code").textContent === "`+code+`"`), shot("10b-passkey-confirm-reloaded"))

	// The phone's user types the code the page shows (passkey_confirm
	// manual): the phone checks it against its own, so a wrong or stale
	// code on the page fails here.
	typed := make(chan error, 1)
	go func() { _, err := e.srv.Phone(phone).ConfirmPasskey(sctx, code); typed <- err }()
	run("confirm", chromedp.Click("#passkey-confirm"), chromedp.WaitVisible("#linked-view"),
		poll(`document.getElementById("linked-phone").textContent === "+`+phone+`"`), shot("11-passkey-linked"))
	if err := <-typed; err != nil {
		t.Fatalf("the phone refused the page's code %q: %v", code, err)
	}
	if err := <-scanned; err != nil {
		t.Fatalf("scan: %v", err)
	}
	if s := e.must(200, "GET", "/v1/sessions/"+id, nil); s["status"] != "connected" {
		t.Fatalf("session %v", s)
	}
}
