package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/walinkdev/walink/pairing/passkey"
)

const pkOptions = `{"challenge":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","timeout":120000,"rpId":"whatsapp.com","allowCredentials":[{"type":"public-key","id":"AQID"}],"userVerification":"required"}`

func passkeyHarness(t *testing.T) (*harness, *PasskeyMode) {
	h := newHarness(t, newDevice(t))
	m := NewPasskeyMode(PasskeyModeConfig{Rand: h.s.cfg.Rand, IDs: h.s.cfg.IDs, DeviceType: 1})
	h.s.AddPairingMode(m)
	h.step(NodeIn{Node: pairDevice("r1", "r2")})
	return h, m
}

func passkeyRequested(t *testing.T, h *harness) passkey.RequestEvent {
	t.Helper()
	h.step(NodeIn{Node: passkey.PrologueRequest("pk1", "1", []byte(pkOptions))})
	if h.lastSent().Tag != "ack" {
		t.Fatalf("request not acked: %v", h.lastSent())
	}
	es := h.eventsOf(func(e Event) bool { me, ok := e.(ModeEvent); return ok && me.Mode == PasskeyModeName })
	if len(es) != 1 {
		t.Fatalf("%d passkey events", len(es))
	}
	re, ok := es[0].(ModeEvent).Value.(PasskeyEvent).Event.(passkey.RequestEvent)
	if !ok {
		t.Fatalf("event %#v", es[0])
	}
	return re
}

// While the step is live: no QR rotation and no QRCodesExpired end, reg
// refresh ignored, no new pair code; pair-success verifies with the step's
// new adv secret only; nothing saved before it.
func TestPasskeyModeHolds(t *testing.T) {
	h, m := passkeyHarness(t)
	qrAdv := h.s.Device().AdvSecret
	re := passkeyRequested(t, h)
	if re.Options.RPID() != "whatsapp.com" || !re.Deadline.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("request %+v", re)
	}
	if !m.Holding() || len(h.saved) != 0 {
		t.Fatalf("holding %v, saved %d", m.Holding(), len(h.saved))
	}
	qrs := len(h.eventsOf(isQR))
	h.advance(100 * time.Second) // both refs' lifetimes
	if len(h.eventsOf(isQR)) != qrs || len(h.ends) != 0 {
		t.Fatalf("QR shown %d→%d, ends %v during the step", qrs, len(h.eventsOf(isQR)), h.ends)
	}
	h.step(regRefresh())
	if len(h.saved) != 0 || h.s.Device().AdvSecret != qrAdv {
		t.Fatal("reg refresh rotated the secret during the step")
	}
	h.step(PairCodeCall{Call: 7, Req: CodeRequest{Phone: "15551234567"}})
	if r := h.reply[7]; !errors.Is(r.Err, ErrModeHolding) {
		t.Fatalf("pair code during the step: %+v", r)
	}
	// A pair-success keyed by the QR's (retired) secret is refused.
	h.step(signedPairSuccess(t, h.s.Device(), qrAdv))
	if h.s.Paired() || len(h.saved) != 0 || h.lastSent().Attr("type") != "error" {
		t.Fatalf("pair-success with the QR's secret: paired %v, sent %v", h.s.Paired(), h.lastSent())
	}
	// With the step's secret it links and stores that secret.
	sec, ok := m.AdvSecret()
	if !ok || sec == qrAdv {
		t.Fatal("no new adv secret")
	}
	h.step(signedPairSuccess(t, h.s.Device(), sec))
	if !h.s.Paired() || len(h.saved) != 1 || h.saved[0].AdvSecret != sec || m.Holding() {
		t.Fatalf("paired %v saved %d holding %v", h.s.Paired(), len(h.saved), m.Holding())
	}
	if _, armed := h.timers[TimerPasskey]; armed {
		t.Fatal("passkey timer left armed")
	}
}

// The step's deadline passes: ErrorEvent{ErrTimeout}, the connection ends,
// nothing saved. API calls before a request get ErrNoRequest.
func TestPasskeyModeTimeout(t *testing.T) {
	h, m := passkeyHarness(t)
	h.step(PairingModeInput{Mode: PasskeyModeName, Value: PasskeyConfirm{Call: 3}})
	if r := h.reply[3]; !errors.Is(r.Err, passkey.ErrNoRequest) {
		t.Fatalf("confirm before a request: %+v", r)
	}
	re := passkeyRequested(t, h)
	h.advance(re.Deadline.Sub(h.now) - time.Second)
	if len(h.ends) != 0 || !m.Holding() {
		t.Fatal("ended before the deadline")
	}
	h.advance(time.Second)
	var timedOut bool
	for _, e := range h.events {
		if me, ok := e.(ModeEvent); ok {
			if ee, ok := me.Value.(PasskeyEvent).Event.(passkey.ErrorEvent); ok && errors.Is(ee.Err, passkey.ErrTimeout) {
				timedOut = true
			}
		}
	}
	if !timedOut || len(h.ends) != 1 || h.ends[0] != EndQRExpired || len(h.saved) != 0 {
		t.Fatalf("timeout event %v, ends %v, saved %d", timedOut, h.ends, len(h.saved))
	}
}

// The authenticator runs as a task; its assertion goes out as the <ref/>
// fetch, and a failure is an ErrorEvent.
func TestPasskeyModeAuthenticator(t *testing.T) {
	h := newHarness(t, newDevice(t))
	fail := errors.New("no authenticator present")
	var got passkey.RequestOptions
	m := NewPasskeyMode(PasskeyModeConfig{Rand: h.s.cfg.Rand, IDs: h.s.cfg.IDs,
		Authenticate: func(o passkey.RequestOptions, _ time.Time) (passkey.Assertion, error) {
			got = o
			return passkey.Assertion{}, fail
		}})
	h.s.AddPairingMode(m)
	h.step(NodeIn{Node: pairDevice("r1")})
	passkeyRequested(t, h)
	if len(h.tasks) != 1 || h.tasks[0].Kind != TaskPasskeyAuth {
		t.Fatalf("tasks %v", h.tasks)
	}
	h.runTasks()
	if got.RPID() != "whatsapp.com" {
		t.Fatal("authenticator not given the options")
	}
	last := h.events[len(h.events)-1].(ModeEvent).Value.(PasskeyEvent).Event.(passkey.ErrorEvent)
	if !errors.Is(last.Err, fail) || last.Continuation {
		t.Fatalf("error event %+v", last)
	}
}
