package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/pairing/passkey"
)

// ClientPasskey is the Passkey driver on top of the client's passkey API
// (walink.Client.PasskeyRequest, SendPasskeyResponse, ConfirmPasskey): the
// page or an API user gets the request options, runs
// navigator.credentials.get in the user's browser, posts the assertion
// back, then confirms the code once the phone shows the same one.
type ClientPasskey struct{}

// ErrNoPasskeyRequest: the session has no live passkey request.
var ErrNoPasskeyRequest = errors.New("serve: no passkey request is live")

// Options implements Passkey.
func (ClientPasskey) Options(_ context.Context, cli *walink.Client) (json.RawMessage, error) {
	req, ok := cli.PasskeyRequest()
	if !ok {
		return nil, ErrNoPasskeyRequest
	}
	return json.RawMessage(req.Options.JSON()), nil
}

// Respond implements Passkey: the assertion in the standard WebAuthn JSON
// form; it returns once WhatsApp accepted or refused it.
func (ClientPasskey) Respond(ctx context.Context, cli *walink.Client, assertion json.RawMessage) error {
	a, err := passkey.ParseAssertion(assertion)
	if err != nil {
		return err
	}
	return cli.SendPasskeyResponse(ctx, a)
}

// Confirm implements Passkey.
func (ClientPasskey) Confirm(ctx context.Context, cli *walink.Client) error {
	return cli.ConfirmPasskey(ctx)
}

// Classify implements Passkey: the client's passkey events as
// passkey_required{options, deadline_s} (status passkey_required),
// passkey_confirm{code, skip_handoff_ux} (status passkey_confirm) and
// pair_passkey_error{error, continuation} (back to passkey_required while
// the request can be answered again, failed after a timeout).
func (ClientPasskey) Classify(ev walink.Event) (string, map[string]any, Status, bool) {
	switch ev := ev.(type) {
	case walink.PairPasskeyRequest:
		return "passkey_required", map[string]any{"options": json.RawMessage(ev.Options.JSON()),
			"deadline_s": int(time.Until(ev.Deadline).Round(time.Second) / time.Second)}, StatusPasskeyRequired, true
	case walink.PairPasskeyConfirmation:
		return "passkey_confirm", map[string]any{"code": ev.Code, "skip_handoff_ux": ev.SkipHandoffUX}, StatusPasskeyConfirm, true
	case walink.PairPasskeyError:
		st := StatusPasskeyRequired
		if errors.Is(ev.Err, walink.ErrPasskeyTimeout) {
			st = StatusFailed
		} else if ev.Continuation {
			st = StatusPasskeyConfirm
		}
		return "pair_passkey_error", map[string]any{"error": fmt.Sprint(ev.Err), "continuation": ev.Continuation}, st, true
	}
	return "", nil, "", false
}

// notePasskey returns what a session object shows of the passkey step
// after ev: the code of the last PairPasskeyConfirmation, dropped at a new
// request (its code will differ).
func notePasskey(cur *PasskeyView, ev walink.Event) *PasskeyView {
	switch ev := ev.(type) {
	case walink.PairPasskeyConfirmation:
		return &PasskeyView{Code: ev.Code, SkipHandoffUX: ev.SkipHandoffUX}
	case walink.PairPasskeyRequest:
		return nil
	}
	return cur
}
