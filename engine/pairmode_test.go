package engine

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/walinkdev/walink/binxml"
)

// echoMode is a toy pairing mode that exercises every hook a real one
// (a passkey step) uses: an API call answered after a request to the
// server, its own timer, a task, an event, and a secret the pair-success
// is verified with.
type echoMode struct {
	call    CallID
	secret  [32]byte
	have    bool
	timeout int
	paired  bool
	sawNote bool
}

const timerEcho = TimerModeFirst + 1
const taskEcho = TaskModeFirst + 1

func (m *echoMode) Name() string { return "echo" }

func (m *echoMode) Input(h ModeHooks, v any) {
	m.call = v.(CallID)
	h.StartTask(taskEcho, func() (any, error) { return "derived", nil })
}

func (m *echoMode) TaskDone(h ModeHooks, t TaskDone) {
	id := h.NextID()
	h.Request(m.Name(), IQ(id, "md", "set", binxml.Node{Tag: "echo", Content: []byte(t.Value.(string))}), 0)
	h.Arm(timerEcho, h.Now().Add(30*time.Second))
}

func (m *echoMode) Node(h ModeHooks, n binxml.Node) bool {
	if n.Tag == "notification" && n.Attr("type") == "echo_note" {
		m.sawNote = true
		return true
	}
	return false
}

func (m *echoMode) Answer(h ModeHooks, id string, resp binxml.Node, err error) {
	if err != nil {
		h.Reply(m.call, "", err)
		return
	}
	rand.Read(m.secret[:])
	m.have = true
	h.Emit(ModeEvent{Mode: m.Name(), Value: "answered"})
	h.Reply(m.call, "ok", nil)
}

func (m *echoMode) Timer(h ModeHooks, k TimerKind) {
	if k == timerEcho {
		m.timeout++
		m.have = false
		h.FlowEnded()
	}
}

func (m *echoMode) AdvSecret() ([32]byte, bool) { return m.secret, m.have }
func (m *echoMode) Outstanding(time.Time) bool  { return m.have }
func (m *echoMode) Paired(h ModeHooks)          { m.paired = true; h.Cancel(timerEcho) }

// TestPairingModeHooks: a mode plugged in with AddPairingMode gets its
// API call, task result, request answer, notification and timer; its
// secret verifies a pair-success; it hears Paired. No Session code knows
// it.
func TestPairingModeHooks(t *testing.T) {
	d := newDevice(t)
	h := newHarness(t, d)
	m := &echoMode{}
	h.s.AddPairingMode(m)
	h.step(NodeIn{Node: pairDevice("r1")})
	h.step(PairingModeInput{Mode: "echo", Value: CallID(5)})
	h.runTasks()
	req := h.lastSent()
	if c, ok := req.Child("echo"); !ok || string(c.Content) != "derived" {
		t.Fatalf("sent %v", req)
	}
	h.step(result(req.Attr("id")))
	if r := h.reply[5]; r.Value != "ok" || r.Err != nil {
		t.Fatalf("reply %+v", r)
	}
	if len(h.eventsOf(func(e Event) bool { me, ok := e.(ModeEvent); return ok && me.Value == "answered" })) != 1 {
		t.Fatal("no ModeEvent")
	}
	h.step(NodeIn{Node: binxml.Node{Tag: "notification", Attrs: []binxml.Attr{binxml.A("id", "x"), binxml.A("type", "echo_note")}}})
	if !m.sawNote || h.lastSent().Tag != "ack" {
		t.Fatal("notification not routed and acked")
	}
	// The mode's secret verifies a pair-success (the QR's would not).
	h.step(signedPairSuccess(t, d, m.secret))
	if !h.s.Paired() || !m.paired || h.s.Device().AdvSecret != m.secret {
		t.Fatalf("paired %v, mode told %v", h.s.Paired(), m.paired)
	}
	if _, ok := h.timers[timerEcho]; ok {
		t.Fatal("mode timer left armed after pairing")
	}
}

// A mode's Outstanding keeps the connection when the QR refs run out, and
// FlowEnded ends it once the mode is done.
func TestPairingModeKeepsConnection(t *testing.T) {
	h := newHarness(t, newDevice(t))
	m := &echoMode{}
	h.s.AddPairingMode(m)
	h.step(NodeIn{Node: pairDevice("r1")})
	h.step(PairingModeInput{Mode: "echo", Value: CallID(1)})
	h.runTasks()
	h.step(result(h.lastSent().Attr("id")))
	h.advance(25 * time.Second) // the mode's timer is at 30 s; the ref lasts 60 s
	if len(h.ends) != 0 {
		t.Fatal("ended early")
	}
	if m.timeout != 0 {
		t.Fatal("mode timer fired early")
	}
	h.advance(5 * time.Second)
	if m.timeout != 1 || len(h.ends) != 0 {
		t.Fatalf("timer %d ends %v: QR still live", m.timeout, h.ends)
	}
	// Again at 35 s, now outliving the QR (mode timer at 65 s).
	h.advance(5 * time.Second)
	h.step(PairingModeInput{Mode: "echo", Value: CallID(2)})
	h.runTasks()
	h.step(result(h.lastSent().Attr("id")))
	h.advance(29 * time.Second) // 64 s: the ref expired at 60 s, the mode keeps the connection
	if len(h.ends) != 0 {
		t.Fatalf("ends %v while the mode is outstanding", h.ends)
	}
	h.advance(time.Second)
	if len(h.ends) != 1 || h.ends[0] != EndQRExpired {
		t.Fatalf("ends %v after the mode's flow ended", h.ends)
	}
}
