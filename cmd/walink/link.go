package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/watest"
)

type linkFlags struct {
	store      string
	phone      string
	code       string
	push       bool
	server     string
	serverRoot string
	json       bool
	sim        bool
	qrPNG      string
	qrSVG      string
	qrFirst    time.Duration
	qrNext     time.Duration
	scanDelay  time.Duration
	versionURL string

	passkeyAssertion string // --passkey-assertion FILE or -
	yes              bool   // --yes: confirm the passkey code at once
	simPasskey       bool   // --sim --passkey
}

func cmdLink(ctx context.Context, e env, args []string, imageOnly bool) error {
	name, synopsis := "link", "[--store PATH] [--phone NUMBER [--code CUSTOM] [--push]] [--server URL --server-root HEX] [--version-url URL] [--json] [--sim [--passkey]] [--passkey-assertion FILE|-] [--yes]"
	if imageOnly {
		name, synopsis = "qr", "--png FILE | --svg FILE [link flags]"
	}
	var f linkFlags
	fs := newFlagSet(e, name, synopsis)
	fs.StringVar(&f.store, "store", "", "session store `path` (default $WALINK_STORE or the user config dir; with --sim a temporary store)")
	fs.StringVar(&f.phone, "phone", "", "also link by pair code for this phone `number` (international, e.g. +1 555 123 4567)")
	fs.StringVar(&f.code, "code", "", "custom 8-character pair code (with --phone)")
	fs.BoolVar(&f.push, "push", false, "ask the phone to show a notification for the pair code (with --phone)")
	fs.StringVar(&f.server, "server", "", "WhatsApp-compatible server WebSocket `URL` (default WhatsApp's)")
	fs.StringVar(&f.serverRoot, "server-root", "", "root public key of --server's certificates, 64 `hex` characters")
	fs.StringVar(&f.versionURL, "version-url", "", "where to fetch the current WhatsApp Web version when WhatsApp refuses this one, a service-worker script `URL` (default https://web.whatsapp.com/sw.js; with --sim the local WhatsApp's /sw.js)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per event instead of drawing")
	fs.BoolVar(&f.sim, "sim", false, "run the local WhatsApp in-process and let its virtual phone scan the QR (or enter the code)")
	fs.StringVar(&f.passkeyAssertion, "passkey-assertion", "", "when the account asks for a passkey, read the WebAuthn assertion (JSON) from this `file` (- for standard input: one JSON line per request)")
	fs.BoolVar(&f.yes, "yes", false, "confirm the passkey step's code at once, without asking")
	fs.BoolVar(&f.simPasskey, "passkey", false, "with --sim, gate the account behind a passkey; the virtual phone provides the assertion")
	pngFlag, svgFlag := "qr-png", "qr-svg"
	if imageOnly {
		pngFlag, svgFlag = "png", "svg"
	}
	fs.StringVar(&f.qrPNG, pngFlag, "", "write each QR code to this PNG `file`")
	fs.StringVar(&f.qrSVG, svgFlag, "", "write each QR code to this SVG `file`")
	fs.DurationVar(&f.qrFirst, "qr-timeout-first", envDuration(e, "WALINK_QR_TIMEOUT_FIRST", 0), "validity of the first QR code (default 60s; env WALINK_QR_TIMEOUT_FIRST)")
	fs.DurationVar(&f.qrNext, "qr-timeout-next", envDuration(e, "WALINK_QR_TIMEOUT_NEXT", 0), "validity of each later QR code (default 20s; env WALINK_QR_TIMEOUT_NEXT)")
	fs.DurationVar(&f.scanDelay, "sim-scan-delay", envDuration(e, "WALINK_SIM_SCAN_DELAY", 3*time.Second), "with --sim, how long the virtual phone waits before scanning")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if imageOnly && f.qrPNG == "" && f.qrSVG == "" {
		return fail(exitUsage, "qr: --png FILE or --svg FILE is required")
	}
	if f.code != "" && f.phone == "" {
		return fail(exitUsage, "link: --code needs --phone")
	}
	if f.push && f.phone == "" {
		return fail(exitUsage, "link: --push needs --phone")
	}
	if (f.server == "") != (f.serverRoot == "") && !f.sim {
		return fail(exitUsage, "link: --server and --server-root go together")
	}
	if f.sim && (f.server != "" || f.serverRoot != "") {
		return fail(exitUsage, "link: --sim runs its own server; drop --server and --server-root")
	}
	if f.simPasskey && !f.sim {
		return fail(exitUsage, "link: --passkey needs --sim (a real account asks for its passkey by itself)")
	}
	root, err := parseRoot(f.serverRoot)
	if err != nil {
		return err
	}
	// Validate the phone number before anything touches the network, with
	// the library's own rules so the message is the same.
	if f.phone != "" {
		f.code = strings.ToUpper(strings.ReplaceAll(f.code, "-", ""))
		if err := (walink.PairCodeOptions{PhoneNumber: f.phone, CustomCode: f.code}).Validate(); err != nil {
			return fail(exitUsage, "link: %v", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var sim *watest.Server
	if f.sim {
		sc := watest.DefaultScenario()
		if f.simPasskey {
			sc.Passkey = watest.PasskeyBoth
		}
		sim, err = watest.Start(ctx, watest.Config{Scenario: &sc})
		if err != nil {
			return fmt.Errorf("starting the local WhatsApp: %w", err)
		}
		defer closeQuietly(sim)
		f.server, root = sim.URL(), sim.RootKey()
		if f.versionURL == "" {
			f.versionURL = sim.VersionURL()
		}
		if f.store == "" {
			dir, err := os.MkdirTemp("", "walink-sim-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			f.store = filepath.Join(dir, "walink.db")
		}
	}
	if f.store == "" {
		f.store = defaultStorePath(e)
	}
	st, err := openStore(ctx, f.store)
	if err != nil {
		return err
	}
	defer closeQuietly(st)

	// A server remembered by an earlier link is used when no flag names one.
	dev, err := pickDevice(ctx, st)
	if err != nil {
		return err
	}
	if f.server == "" && dev != nil && dev.ServerURL != "" {
		f.server, root = dev.ServerURL, dev.ServerRoot
	}

	cfg := walink.Config{ServerURL: f.server, ServerRoot: root, QRFirstTimeout: f.qrFirst, QRNextTimeout: f.qrNext, VersionURL: f.versionURL}
	cfg.Reconnect.Disabled = true // a one-shot command reports failures instead of retrying forever
	cli := walink.NewClient(st, cfg)
	defer closeQuietly(cli)

	ui := newLinkUI(e, f, imageOnly)
	events := make(chan walink.Event, 64)
	cli.AddEventHandler(func(ev walink.Event) {
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	})

	var phone *watest.Phone
	var scans chan string
	if sim != nil {
		number := "15551234567"
		if f.phone != "" {
			number, _ = walink.NormalizePhoneNumber(f.phone)
		}
		phone = sim.Phone(number)
		if f.phone == "" {
			// With --phone the virtual phone types the code instead: a
			// scan would win the race and hide the pair-code flow.
			scans = make(chan string, 16)
			go simPhone(ctx, ui, phone, scans, f.scanDelay)
		}
	}

	var pkPhone *watest.Phone
	if f.simPasskey {
		pkPhone = phone
	}
	pk := newPasskeyLink(e, f, ui, cli, pkPhone)

	if err := cli.Connect(ctx); err != nil {
		return connectError(err)
	}
	if cli.IsLoggedIn() {
		ui.line("already linked; checking the session…")
	}
	codeErrs := make(chan error, 1)
	if f.phone != "" && !cli.IsLoggedIn() {
		go func() {
			_, err := cli.PairWithCode(ctx, walink.PairCodeOptions{
				PhoneNumber:          f.phone,
				CustomCode:           f.code,
				ShowPushNotification: f.push,
			})
			// ErrAlreadyPaired: the QR code won the race meanwhile.
			if err != nil && ctx.Err() == nil && !errors.Is(err, walink.ErrAlreadyPaired) {
				codeErrs <- err
			}
		}()
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	paired := cli.IsLoggedIn()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			ui.tick()
		case ev := <-events:
			ui.event(ev)
			switch ev := ev.(type) {
			case walink.PairingQRCode:
				if scans != nil {
					scans <- ev.Code
				}
			case walink.PairingCode:
				if phone != nil {
					go simEnterCode(ctx, ui, phone, ev.Code, f.scanDelay)
				}
			case walink.PairSuccess:
				paired = true
			case walink.Connected:
				if paired {
					// The client stored the server with the session
					// (store.Device.ServerURL); the CLI never writes the
					// device behind it.
					ui.done()
					return nil
				}
			case walink.PairPasskeyRequest:
				if err := pk.request(ctx, ev); err != nil {
					return err
				}
			case walink.PairPasskeyConfirmation:
				if err := pk.confirmation(ctx, ev); err != nil {
					return err
				}
			case walink.PairPasskeyError:
				if err := pk.stepError(ev); err != nil {
					return err
				}
			case walink.QRCodesExpired:
				return fail(exitNotLinked, "QR codes expired before one was scanned; run 'walink link' again")
			case walink.PairError:
				return fail(exitNotLinked, "pairing failed: %v", ev.Err)
			case walink.LoggedOut:
				if !ev.OnConnect {
					return fail(exitLoggedOut, "logged out: %v", ev.Reason)
				}
				// A saved session the server no longer knows: the client
				// cleared it and the next connect pairs anew.
				ui.line("the saved session was removed on the server; linking anew")
				paired = false
				if err := cli.Connect(ctx); err != nil {
					return connectError(err)
				}
			case walink.ClientOutdated:
				// The client already fetched the current version and
				// retried once; the message says why that did not help.
				return fail(exitRefused, "WhatsApp refused this client version as outdated: %s", strings.TrimPrefix(ev.Message, "walink: "))
			case walink.TemporaryBan:
				return fail(exitRefused, "temporarily banned (code %d, expires in %s)", ev.Code, ev.Expire)
			case walink.StreamReplaced:
				return fail(exitFailure, "another connection replaced this one")
			case walink.ConnectFailure:
				return fail(exitFailure, "connection refused: %v %s", ev.Reason, ev.Message)
			case walink.Disconnected:
				if !paired {
					return fail(exitFailure, "disconnected before linking finished")
				}
			}
		case err := <-codeErrs:
			return fail(pairCodeExit(err), "pair code: %v", err)
		case r := <-pk.results:
			if err := pk.result(r); err != nil {
				return err
			}
		case <-pk.expired():
			return errPasskeyRefusedForGood
		}
	}
}

func pairCodeExit(err error) int {
	switch {
	case errors.Is(err, walink.ErrPhoneNumberRequired), errors.Is(err, walink.ErrPhoneNumberTooShort),
		errors.Is(err, walink.ErrPhoneNumberNotInternational), errors.Is(err, walink.ErrInvalidCustomCode):
		return exitUsage
	}
	return exitNotLinked
}

func connectError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fail(exitFailure, "connect: %v", err)
}

func envDuration(e env, name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(s * float64(time.Second))
	}
	return def
}

// simPhone plays the virtual phone: after a visible pause it scans the
// newest QR; when the server rotates the adv secret (companion_reg_refresh)
// it scans the re-rendered code, as a phone camera still pointed at the
// screen would.
func simPhone(ctx context.Context, ui *linkUI, phone *watest.Phone, scans <-chan string, delay time.Duration) {
	var latest string
	select {
	case latest = <-scans:
	case <-ctx.Done():
		return
	}
	pause := time.NewTimer(delay)
	defer pause.Stop()
	for {
		select {
		case latest = <-scans:
			continue
		case <-ctx.Done():
			return
		case <-pause.C:
		}
		ui.line("virtual phone: scanning the QR code…")
		_, err := phone.ScanQR(ctx, latest)
		if err == nil || ctx.Err() != nil {
			return
		}
		if !errors.Is(err, watest.ErrRescan) {
			ui.line("virtual phone: scan refused: " + err.Error())
			return
		}
		// Wait for the re-rendered code, then scan it at once.
		select {
		case latest = <-scans:
		case <-ctx.Done():
			return
		}
		pause.Reset(200 * time.Millisecond)
	}
}

func simEnterCode(ctx context.Context, ui *linkUI, phone *watest.Phone, code string, delay time.Duration) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	ui.line("virtual phone: entering code " + displayCode(code) + "…")
	if _, err := phone.EnterCode(ctx, code); err != nil && ctx.Err() == nil {
		ui.line("virtual phone: code refused: " + err.Error())
	}
}

func displayCode(code string) string {
	code = strings.ToUpper(code)
	if len(code) == 8 {
		return code[:4] + "-" + code[4:]
	}
	return code
}
