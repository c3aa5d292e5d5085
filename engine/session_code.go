package engine

import (
	"fmt"
	"io"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/keys"
	"github.com/walinkdev/walink/pairing"
)

// codeState is the outstanding pair code of a session (CHANGES-2026.md §4).
type codeState struct {
	CodeFlow
	call           CallID // the PairCodeCall waiting for the code; 0 once answered
	req            CodeRequest
	eph            keys.KeyPair // secret: never logged
	requesting     bool         // stage 1 (task or companion_hello) in flight
	task           uint64       // the task in flight
	inStage2       bool         // the stage-2 task is running
	haveSecret     bool
	advSecret      [32]byte
	finishAccepted bool // companion_finish answered: waiting for pair-success
}

func (f *codeState) outstanding(now time.Time) bool {
	if f == nil {
		return false
	}
	return f.requesting || f.CodeFlow.Outstanding(now)
}

// modeHolding reports whether a HoldingMode's flow holds the pairing.
func (s *Session) modeHolding() bool {
	for _, m := range s.pairModes {
		if hm, ok := m.(HoldingMode); ok && hm.Holding() {
			return true
		}
	}
	return false
}

func (s *Session) modeOutstanding(now time.Time) bool {
	for _, m := range s.pairModes {
		if m.Outstanding(now) {
			return true
		}
	}
	return false
}

// CodePrep is the CPU work of asking for a pair code: the code (unless
// custom), the ephemeral key pair and its PBKDF2-wrapped public key.
type CodePrep struct {
	Code    string
	Eph     keys.KeyPair
	Wrapped []byte
}

// PrepareCode makes a CodePrep; the PBKDF2 in it is deliberately slow,
// so a driver runs it as a task.
func PrepareCode(rand io.Reader, custom string) (CodePrep, error) {
	var p CodePrep
	var err error
	p.Code = custom
	if p.Code == "" {
		if p.Code, err = pairing.NewCode(rand); err != nil {
			return CodePrep{}, fmt.Errorf("engine: making pair code: %w", err)
		}
	}
	if p.Eph, err = keys.NewKeyPair(rand); err != nil {
		return CodePrep{}, fmt.Errorf("engine: %w", err)
	}
	if p.Wrapped, err = pairing.WrapKey(rand, p.Code, p.Eph.Public); err != nil {
		return CodePrep{}, fmt.Errorf("engine: wrapping key: %w", err)
	}
	return p, nil
}

// pairCodeCall starts stage 1: the code's preparation as a task, then
// companion_hello.
func (s *Session) pairCodeCall(out *actions, now time.Time, in PairCodeCall) {
	switch {
	case s.paired || s.pairing != nil || s.dev.Paired():
		out.add(Reply{Call: in.Call, Err: ErrAlreadyPaired})
		return
	case !s.ready:
		out.add(Reply{Call: in.Call, Err: ErrNotReady})
		return
	case s.code.outstanding(now):
		out.add(Reply{Call: in.Call, Err: ErrCodeOutstanding})
		return
	case s.modeHolding():
		out.add(Reply{Call: in.Call, Err: ErrModeHolding})
		return
	}
	f := &codeState{call: in.Call, req: in.Req, requesting: true}
	f.Lifetime = s.cfg.CodeLifetime
	s.code = f
	rand, custom := s.cfg.Rand, in.Req.CustomCode
	f.task = s.newTask(out, TaskPrepareCode, func() (any, error) { return PrepareCode(rand, custom) })
}

func (s *Session) codePrepared(out *actions, now time.Time, in TaskDone) {
	f := s.code
	if f == nil || f.task != in.ID || !f.requesting {
		return // cancelled or superseded meanwhile; its caller has its answer
	}
	if in.Err != nil {
		s.dropRequest(out, f, in.Err)
		return
	}
	p := in.Value.(CodePrep)
	f.eph, f.Code = p.Eph, p.Code
	r := f.req
	s.request(out, now, CompanionHello(s.cfg.IDs.Next(), r.Phone, r.ShowPush, p.Wrapped, s.dev.NoiseKey.Public, r.PlatformID, r.Display),
		pendingIQ{kind: iqHello, flow: f}, 0)
}

// dropRequest ends a code whose stage 1 failed and answers its caller.
func (s *Session) dropRequest(out *actions, f *codeState, err error) {
	f.requesting, f.Done = false, true
	if s.code == f {
		s.code = nil
	}
	if f.call != 0 {
		out.add(Reply{Call: f.call, Err: err})
		f.call = 0
	}
	s.flowEnded(out)
}

func (s *Session) helloAnswered(out *actions, now time.Time, p pendingIQ, resp binxml.Node, err error) {
	f := p.flow
	if s.code != f || f.Done {
		return // cancelled meanwhile, or QR pairing won (its caller was answered then)
	}
	if err != nil {
		s.dropRequest(out, f, err)
		return
	}
	ref := ParseCompanionHelloResult(resp)
	if ref == nil {
		s.dropRequest(out, f, ErrMissingPairingRef)
		return
	}
	f.requesting = false
	f.Phone, f.Ref, f.Started = f.req.Phone, ref, now
	s.arm(out, TimerCode, now.Add(f.lifetime()))
	out.emit(PairingCode{Code: f.Code, Timeout: f.lifetime(), Expires: now.Add(f.lifetime())})
	out.add(Reply{Call: f.call, Value: f.Code})
	f.call = 0
}

// cancelPairCode ends the outstanding code (in.Call zero), or the request
// of in.Call if it is still the outstanding one. A stage 2 under way is
// abandoned.
func (s *Session) cancelPairCode(out *actions, in CancelPairCode) {
	f := s.code
	if f == nil || (in.Call != 0 && f.call != in.Call) {
		return
	}
	f.Done, f.requesting = true, false
	s.code = nil
	s.cancel(out, TimerCode)
	if f.call != 0 {
		out.add(Reply{Call: f.call, Err: ErrCodeCancelled})
		f.call = 0
	}
}

// endFlow drops f; see flowEnded.
func (s *Session) endFlow(out *actions, f *codeState) {
	f.Done = true
	if s.code == f {
		s.code = nil
		s.cancel(out, TimerCode)
	}
	s.flowEnded(out)
}

// flowEnded ends the connection when the QR refs are already spent and no
// pairing flow is left (CHANGES-2026.md §3).
func (s *Session) flowEnded(out *actions) {
	if s.qrSpent && !s.paired && s.pairing == nil && s.code == nil && !s.modeOutstanding(time.Time{}) {
		out.log(LevelInfo, "pair code ended after the QR refs expired; disconnecting")
		s.finish(out, EndQRExpired)
	}
}

// codeTimer: the code's window passed without the phone answering, or
// pair-success did not follow an accepted companion_finish in time; then
// the user is asked for a new code and the QR gets a fresh adv secret
// (CHANGES-2026.md §4).
func (s *Session) codeTimer(out *actions, now time.Time) {
	f := s.code
	if f == nil || s.paired {
		return
	}
	switch {
	case f.finishAccepted && s.modeHolding():
		// A passkey step followed companion_finish: pair-success waits
		// for the user's ceremony, bounded by the mode's own deadline.
		out.log(LevelDebug, "pair-success after companion_finish waits for a pairing mode")
	case f.finishAccepted:
		out.log(LevelWarn, "no pair-success after companion_finish")
		s.endFlow(out, f)
		out.emit(PairingCodeRefresh{})
		if s.end == EndNone {
			s.regRefresh(out)
		}
	case !f.Finishing:
		out.log(LevelInfo, "pair code expired")
		s.endFlow(out, f)
	}
}

// linkCode dispatches a link_code_companion_reg notification on its stage.
func (s *Session) linkCode(out *actions, now time.Time, n binxml.Node) {
	lc, err := ParseLinkCodeNotification(n)
	if err != nil {
		out.log(LevelWarn, "bad link_code_companion_reg", "err", err)
		return
	}
	switch lc.Stage {
	case "primary_hello":
		f := s.code
		switch {
		case f == nil || s.paired || s.pairing != nil:
			out.log(LevelInfo, "ignoring primary_hello: no pair code outstanding")
			return
		case f.inStage2:
			out.log(LevelInfo, "ignoring primary_hello: stage 2 already running")
			return
		}
		if err := f.CheckPrimaryHello(now, lc); err != nil {
			out.log(LevelWarn, "ignoring primary_hello", "err", err)
			return
		}
		f.Finishing, f.inStage2 = true, true
		rand, eph, code, identity := s.cfg.Rand, f.eph, f.Code, s.dev.IdentityKey
		f.task = s.newTask(out, TaskFinishCode, func() (any, error) { return finishCode(rand, eph, code, identity, lc) })
	case "refresh_code":
		if f := s.code; f != nil && !f.Done && f.Ref != nil && string(f.Ref) == string(lc.Ref) {
			out.emit(PairingCodeRefresh{ForceManual: lc.ForceManual})
		}
	default:
		out.log(LevelInfo, "ignoring link_code_companion_reg stage", "stage", lc.Stage)
	}
}

type finished struct {
	bundle []byte
	adv    [32]byte
}

// finishCode is stage 2's CPU work: unwrap the primary's ephemeral key
// with the code (slow PBKDF2), seal the key bundle, derive the adv secret.
func finishCode(rand io.Reader, eph keys.KeyPair, code string, identity keys.KeyPair, lc LinkCodeNotification) (any, error) {
	primaryEph, err := pairing.UnwrapKey(code, lc.WrappedPrimary)
	if err != nil {
		return nil, fmt.Errorf("primary_hello: %w", err)
	}
	primaryID, err := keys.PublicKeyFromBytes(lc.PrimaryIdentity)
	if err != nil {
		return nil, fmt.Errorf("primary_hello: %w", err)
	}
	bundle, adv, err := pairing.CompanionFinish(rand, eph.Private, identity, primaryEph, primaryID)
	if err != nil {
		return nil, fmt.Errorf("companion_finish: %w", err)
	}
	return finished{bundle: bundle, adv: adv}, nil
}

func (s *Session) codeFinished(out *actions, now time.Time, in TaskDone) {
	f := s.code
	if f == nil || f.task != in.ID || f.Done {
		return // cancelled or superseded while deriving
	}
	f.inStage2 = false
	if in.Err != nil {
		s.stage2Failed(out, f, in.Err)
		return
	}
	r := in.Value.(finished)
	f.advSecret, f.haveSecret = r.adv, true
	s.request(out, now, CompanionFinish(s.cfg.IDs.Next(), f.Phone, r.bundle, s.dev.IdentityKey.Public, f.Ref),
		pendingIQ{kind: iqFinish, flow: f}, CompanionFinishWait)
}

// stage2Failed ends the flow first, so a handler may ask for a new code at
// once, then reports PairError.
func (s *Session) stage2Failed(out *actions, f *codeState, err error) {
	s.endFlow(out, f)
	out.log(LevelWarn, "pair code stage 2 failed", "err", err)
	out.emit(PairError{Err: err})
}

func (s *Session) finishAnswered(out *actions, now time.Time, p pendingIQ, err error) {
	f := p.flow
	if s.code != f || f.Done || s.paired {
		return
	}
	switch {
	case err == nil:
		f.finishAccepted = true
		s.arm(out, TimerCode, now.Add(s.cfg.CodeFinishWait))
	case err == ErrTimeout:
		// A timeout does not end the flow (CHANGES-2026.md §4): the
		// pair-success may still come.
		out.log(LevelWarn, "no answer to companion_finish")
	default:
		s.stage2Failed(out, f, err)
	}
}
