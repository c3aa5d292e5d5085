package serve

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/walinkdev/walink/internal/artifacts"
	"github.com/walinkdev/walink/internal/qrimage"
	"github.com/walinkdev/walink/watest"
)

var captionRE = regexp.MustCompile(`^The code is replaced with a new one when it expires\.( This one is valid for \d+ s\.)?$`)

// browser starts headless Chromium (Debian's chromium; .ci/run installs
// it) and returns a tab.
func browser(t *testing.T, width, height int) context.Context {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (apt-get install chromium; .ci/run does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.WindowSize(width, height))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The first action starts the browser, bound to the tab's context (not
	// to a step's timeout).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// TestBrowser drives the page in real headless Chromium: sign in, link an
// account by reading the QR off the rendered page (the local WhatsApp's
// phone scans what the screen shows), see the linked view; link another
// with the pair-code form; use the simulator's virtual phone panel; log
// out with the confirmation dialog. Screenshots go to artifacts.Dir.
func TestBrowser(t *testing.T) {
	srv, err := watest.Start(t.Context(), watest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := newEnv(t, envOpts{srv: srv, mutate: func(c *Config) { c.Sim = WatestSim{Server: srv} }})
	ctx := browser(t, 1000, 1100)
	dir := artifacts.Dir(t)
	p := page{t: t, ctx: ctx, dir: dir, failPrefix: "failed-"}
	shot, run, text := p.shot, p.run, p.text

	// Sign in.
	run("sign in",
		chromedp.Navigate(e.http.URL+"/"),
		chromedp.WaitVisible("#key"),
		shot("01-sign-in"),
	)
	run("type key", chromedp.SendKeys("#key", testKey))
	run("click", chromedp.Click("#signin"))
	run("app", chromedp.WaitVisible("#new-session"))

	// Link by QR: the phone scans the image the browser rendered.
	run("new session", chromedp.Click("#new-session"), chromedp.WaitVisible("#qr-img"))
	id := e.newest()
	scanned := false
	var qr string
	for tries := 0; tries < 10 && !scanned; tries++ {
		run("qr", chromedp.WaitVisible("#qr-img"),
			poll(`document.getElementById("qr-img").complete && document.getElementById("qr-img").naturalWidth > 0`))
		png, err := chromedp.Run(ctx, chromedp.Screenshot("#qr-img"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := qrimage.DecodePNG(png)
		if err != nil {
			os.WriteFile(filepath.Join(dir, "qr-undecodable.png"), png, 0o644)
			t.Fatalf("decoding the rendered QR: %v", err)
		}
		if got == qr { // the page has not re-rendered yet
			time.Sleep(50 * time.Millisecond)
			continue
		}
		qr = got
		if tries == 0 {
			// The caption is whole sentences, with or without the
			// countdown (it fills in on the page's next tick).
			if c := text(".qr figcaption"); !captionRE.MatchString(c) {
				t.Errorf("QR caption %q", c)
			}
			run("shot", shot("02-scan-qr"))
			os.WriteFile(filepath.Join(dir, "02-qr-element.png"), png, 0o644)
		}
		_, err = e.srv.Phone("15550008888").ScanQR(ctx, qr)
		switch {
		case err == nil:
			scanned = true
		case isRetry(err):
		default:
			t.Fatalf("scan: %v", err)
		}
	}
	if !scanned {
		t.Fatal("the phone never linked from the rendered QR")
	}
	run("linked view", chromedp.WaitVisible("#linked-view"), shot("03-linked"))
	linked := text("#linked-phone")
	if linked != "+15550008888" {
		t.Fatalf("linked view shows %q", linked)
	}
	if s := e.must(200, "GET", "/v1/sessions/"+id, nil); s["status"] != "connected" {
		t.Fatalf("session %v", s)
	}

	// Link with the pair-code form.
	run("pair code",
		chromedp.Click("#new-session"),
		chromedp.WaitVisible("#qr-img"),
		chromedp.Click("#code-details summary"),
		chromedp.SendKeys("#code-phone", "+1 555 000 9999"),
		chromedp.Click("#code-submit"),
		chromedp.WaitVisible("#code-view"),
		poll(`document.getElementById("pair-code").textContent.length === 9`),
		shot("04-pair-code"),
	)
	code := strings.ReplaceAll(text("#pair-code"), "-", "")
	if _, err := e.srv.Phone("15550009999").EnterCode(ctx, code); err != nil {
		t.Fatalf("typing %q: %v", code, err)
	}
	run("linked by code", chromedp.WaitVisible("#linked-view"), poll(`document.getElementById("linked-phone").textContent === "+15550009999"`))
	linked = text("#linked-phone")
	if linked != "+15550009999" {
		t.Fatalf("linked view shows %q", linked)
	}

	// The simulator's virtual phone panel.
	run("sim",
		chromedp.Click("#new-session"),
		chromedp.WaitVisible("#sim-scan"),
		chromedp.SetValue("#sim-phone", "15550001010"),
		shot("05-sim-panel"),
		chromedp.Click("#sim-scan"),
	)
	// The first scan rotates the QR (companion_reg_refresh): scan again,
	// as the page tells a person with a real phone.
	for range 20 {
		v := text("#sim-msg")
		if v == "Scanned." {
			break
		}
		if strings.Contains(v, "re-rendered") || strings.Contains(v, "retired") {
			time.Sleep(300 * time.Millisecond)
			run("rescan", chromedp.Click("#sim-scan"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	run("sim linked", chromedp.WaitVisible("#linked-view"), poll(`document.getElementById("linked-phone").textContent === "+15550001010"`))
	linked = text("#linked-phone")
	if linked != "+15550001010" {
		t.Fatalf("sim linked view shows %q", linked)
	}

	// Log out the first account, through the confirmation dialog.
	run("logout",
		chromedp.Click(fmt.Sprintf(`//li[@data-id=%q]//button[text()="Log out"]`, id)),
		chromedp.WaitVisible("#confirm"),
		shot("06-confirm-logout"),
		chromedp.Click("#confirm-ok"),
		chromedp.WaitVisible(fmt.Sprintf(`//li[@data-id=%q]//span[contains(@class,"logged_out")]`, id)),
		shot("07-logged-out"),
	)
	if n := len(e.srv.Phone("15550008888").Devices()); n != 0 {
		t.Fatalf("phone still lists %d devices after logout", n)
	}

	// Phone-sized: the list is readable on a phone.
	pctx := browser(t, 390, 844)
	if err := chromedp.Do(pctx, chromedp.Navigate(e.http.URL+"/"), chromedp.WaitVisible("#key"),
		chromedp.SendKeys("#key", testKey), chromedp.Click("#signin"),
		chromedp.WaitVisible(`#sessions li`), saveShot(filepath.Join(dir, "08-phone.png"))); err != nil {
		t.Fatal(err)
	}
}

// saveShot saves a screenshot of the whole page.
func saveShot(path string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		b, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(path, b, 0o644)
	})
}

func isRetry(err error) bool {
	s := err.Error()
	return strings.Contains(s, "re-rendered") || strings.Contains(s, "retired")
}

// newest returns the id of the most recently created session.
func (e *env) newest() string {
	e.t.Helper()
	l := e.must(200, "GET", "/v1/sessions", nil)["sessions"].([]any)
	return l[len(l)-1].(map[string]any)["id"].(string)
}

// page drives one headless Chromium tab for a browser test: run does
// actions with a 30 s bound and, on failure, saves a screenshot named
// failPrefix+what before failing the test.
type page struct {
	t          *testing.T
	ctx        context.Context
	dir        string
	failPrefix string
}

func (p page) shot(name string) chromedp.Action[chromedp.Void] {
	return saveShot(filepath.Join(p.dir, name+".png"))
}

func (p page) run(what string, acts ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	sctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, acts...); err != nil {
		chromedp.Do(p.ctx, p.shot(p.failPrefix+strings.ReplaceAll(what, " ", "-")))
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(sel))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// poll waits until the JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr)(ctx, tg)
		return err
	})
}
