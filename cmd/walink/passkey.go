package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/pairing/passkey"
	"github.com/walinkdev/walink/watest"
)

// passkeyLink drives the passkey step of `walink link` (PASSKEY.md): it
// gets an assertion for each PairPasskeyRequest (from the virtual phone
// with --sim --passkey, from --passkey-assertion otherwise), confirms the
// code, and decides when the step has failed for good.
type passkeyLink struct {
	e     env
	f     linkFlags
	ui    *linkUI
	cli   *walink.Client
	phone *watest.Phone // --sim --passkey: the virtual phone is the authenticator

	stdin *bufio.Reader  // shared by --passkey-assertion - and the Enter prompt
	lines chan stdinLine // standard input's lines, read by one goroutine (see line)

	results  chan passkeyResult
	seq      int                // of the live request; results of older ones are dropped
	cancel   context.CancelFunc // ends the live request's assertion read
	window   time.Time          // end of the live request's ceremony (its options' timeout)
	refused  bool               // the last assertion was refused: wait for a new request
	timer    *time.Timer
	fileSeen time.Time // modification time of the assertion file last read
}

// passkeyResult is the outcome of a SendPasskeyResponse or ConfirmPasskey
// run off the event loop, for request seq.
type passkeyResult struct {
	seq     int
	confirm bool
	err     error
}

type stdinLine struct {
	s   string
	err error
}

func newPasskeyLink(e env, f linkFlags, ui *linkUI, cli *walink.Client, phone *watest.Phone) *passkeyLink {
	p := &passkeyLink{e: e, f: f, ui: ui, cli: cli, phone: phone, results: make(chan passkeyResult, 4)}
	if e.stdin != nil {
		p.stdin = bufio.NewReader(e.stdin)
	}
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	return p
}

// line returns standard input's next line. One goroutine reads them all
// (started at the first call), so a request that supersedes another whose
// read is still pending does not read concurrently with it; that goroutine
// ends at end of input (a read from a terminal or pipe cannot be
// interrupted; the process exits after the run).
func (p *passkeyLink) line(ctx context.Context) (string, error) {
	if p.stdin == nil {
		return "", errors.New("no standard input")
	}
	if p.lines == nil {
		p.lines = make(chan stdinLine)
		go func() {
			for {
				s, err := p.stdin.ReadString('\n')
				if err == io.EOF && strings.TrimSpace(s) != "" {
					err = nil
				}
				p.lines <- stdinLine{s, err}
				if err != nil {
					close(p.lines)
					return
				}
			}
		}()
	}
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", io.EOF
		}
		return l.s, l.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// expired fires when a refused request's ceremony window passes with no
// new request.
func (p *passkeyLink) expired() <-chan time.Time { return p.timer.C }

// stop ends the live request's background read.
func (p *passkeyLink) stop() {
	if p.cancel != nil {
		p.cancel()
		p.cancel = nil
	}
}

// request handles a PairPasskeyRequest: describe it, then answer it.
func (p *passkeyLink) request(ctx context.Context, ev walink.PairPasskeyRequest) error {
	// A new request supersedes the last: its assertion is for another
	// challenge, so a read still waiting for one is dropped.
	p.stop()
	p.seq++
	seq := p.seq
	ctx, p.cancel = context.WithCancel(ctx)
	p.refused = false
	p.timer.Stop()
	o := ev.Options
	// WhatsApp gives the user the options' timeout for the ceremony and
	// ends its step then (PASSKEY.md §6.1); the client's Deadline adds a
	// minute's grace for the rest of an accepted step. After a refusal only
	// a new request can help, and it needs the phone to start over: the
	// run waits for it until the window ends, not a minute more (a user who
	// starts over later runs walink link again).
	p.window = ev.Deadline
	if t := o.Timeout(); t > 0 && time.Now().Add(t).Before(p.window) {
		p.window = time.Now().Add(t)
	}
	p.ui.line(fmt.Sprintf("\nThis WhatsApp account is protected by a passkey. Use the passkey of the account\n"+
		"(phone, security key or password manager) for %s to approve this device,\nbefore %s (%s left).",
		o.RPID(), ev.Deadline.Local().Format("15:04:05"), time.Until(ev.Deadline).Round(time.Second)))
	switch {
	case p.f.passkeyAssertion != "":
		if p.f.passkeyAssertion != "-" {
			p.ui.line("waiting for the assertion (WebAuthn JSON) in " + p.f.passkeyAssertion + "…")
		}
		// Read off the event loop: the file may appear later (the
		// assertion needs this request's challenge).
		dl := ev.Deadline
		go func() {
			a, err := p.readAssertion(ctx, dl)
			if err == nil {
				err = p.cli.SendPasskeyResponse(ctx, a)
			} else {
				err = &exitError{code: exitNotLinked, err: err}
			}
			p.results <- passkeyResult{seq: seq, err: err}
		}()
		return nil
	case p.phone != nil:
		p.ui.line("virtual phone: approving with its passkey…")
		b, err := p.phone.Assert(o.JSON())
		var a passkey.Assertion
		if err == nil {
			a, err = passkey.ParseAssertion(b)
		}
		if err != nil {
			return fail(exitFailure, "virtual phone: passkey: %v", err)
		}
		go func() {
			err := p.cli.SendPasskeyResponse(ctx, a)
			p.results <- passkeyResult{seq: seq, err: err}
		}()
		return nil
	}
	return fail(exitNotLinked, "link: this account needs a passkey: get a WebAuthn assertion for these request options and pass it with --passkey-assertion FILE (or - for stdin):\n%s", o.JSON())
}

// readAssertion reads one JSON document: the next line of standard input
// (one line per request), or the file once it exists and, for a later
// request, once it changed (an assertion answers one challenge only).
func (p *passkeyLink) readAssertion(ctx context.Context, deadline time.Time) (passkey.Assertion, error) {
	var b []byte
	var err error
	if p.f.passkeyAssertion == "-" {
		var line string
		line, err = p.line(ctx)
		b = []byte(line)
	} else {
		b, err = p.waitFile(ctx, deadline)
	}
	if err != nil {
		return passkey.Assertion{}, fmt.Errorf("reading the passkey assertion: %w", err)
	}
	a, err := passkey.ParseAssertion([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return passkey.Assertion{}, fmt.Errorf("--passkey-assertion: %w", err)
	}
	return a, nil
}

// waitFile polls --passkey-assertion until it holds a new document.
func (p *passkeyLink) waitFile(ctx context.Context, deadline time.Time) ([]byte, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		fi, err := os.Stat(p.f.passkeyAssertion)
		switch {
		case err == nil && fi.Size() > 0 && !fi.ModTime().Equal(p.fileSeen):
			b, err := os.ReadFile(p.f.passkeyAssertion)
			if err == nil && json.Valid(bytes.TrimSpace(b)) { // not half-written
				p.fileSeen = fi.ModTime()
				return b, nil
			}
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no assertion before the step's deadline", p.f.passkeyAssertion)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// confirmation handles a PairPasskeyConfirmation: show the code, then
// confirm at once (--yes), after Enter (terminal), or when a handoff proof
// was sent (no terminal); otherwise fail clearly.
func (p *passkeyLink) confirmation(ctx context.Context, ev walink.PairPasskeyConfirmation) error {
	p.ui.line(fmt.Sprintf("\n  Confirmation code:  %s\n\n  Check that your phone shows the same code, and confirm it there.", ev.Code))
	switch {
	case p.f.yes:
	case p.ui.terminal() && p.stdin != nil:
		p.ui.line("  Press Enter here once the codes match (Ctrl-C to cancel).")
		if _, err := p.line(ctx); err != nil {
			return fail(exitNotLinked, "link: no confirmation: %v", err)
		}
	case ev.SkipHandoffUX:
		// The phone vouched for this companion with the handoff proof.
	default:
		return fail(exitNotLinked, "link: the passkey step's code must be confirmed: run on a terminal and press Enter, or pass --yes")
	}
	seq := p.seq
	go func() {
		err := p.cli.ConfirmPasskey(ctx)
		p.results <- passkeyResult{seq: seq, confirm: true, err: err}
	}()
	return nil
}

// result handles a call's outcome: a refused assertion is reported as
// pair_passkey_error and the step waits for a new request until its
// deadline; any other failure ends the run.
func (p *passkeyLink) result(r passkeyResult) error {
	if r.seq != p.seq {
		return nil // a superseded request's read or call
	}
	if r.err == nil {
		if !r.confirm {
			p.ui.line("passkey accepted; waiting for the phone…")
		}
		return nil
	}
	var xe *exitError
	if errors.As(r.err, &xe) {
		return fail(xe.code, "link: %v", xe.err)
	}
	p.ui.event(walink.PairPasskeyError{Err: r.err, Continuation: r.confirm})
	if !r.confirm && errors.Is(r.err, walink.ErrPasskeyRefused) && time.Until(p.window) > 0 {
		p.refused = true
		p.timer.Reset(time.Until(p.window))
		p.ui.line("WhatsApp refused the passkey; waiting for a new request until " + p.window.Local().Format("15:04:05") + "…")
		return nil
	}
	return fail(exitNotLinked, "passkey: %v", r.err)
}

// stepError handles a PairPasskeyError event of the client.
func (p *passkeyLink) stepError(ev walink.PairPasskeyError) error {
	if errors.Is(ev.Err, walink.ErrPasskeyTimeout) && p.refused {
		return errPasskeyRefusedForGood
	}
	if errors.Is(ev.Err, walink.ErrPasskeyTimeout) {
		return fail(exitNotLinked, "passkey step timed out: %v", ev.Err)
	}
	return nil
}

// errPasskeyRefusedForGood ends a run whose last assertion was refused
// when no new request came in the ceremony window.
var errPasskeyRefusedForGood = fail(exitNotLinked, "link: passkey refused and no new request before the deadline")

func jsonPasskeyEvent(ev walink.Event) map[string]any {
	switch ev := ev.(type) {
	case walink.PairPasskeyRequest:
		return map[string]any{"event": "pair_passkey_request", "options": ev.Options}
	case walink.PairPasskeyConfirmation:
		return map[string]any{"event": "pair_passkey_confirmation", "code": ev.Code, "skip_handoff_ux": ev.SkipHandoffUX}
	case walink.PairPasskeyError:
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		return map[string]any{"event": "pair_passkey_error", "error": msg, "continuation": ev.Continuation}
	}
	return nil
}
