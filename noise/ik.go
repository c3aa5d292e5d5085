package noise

import (
	"errors"
	"fmt"
	"time"

	"github.com/walinkdev/walink/keys"
)

// Mode names the handshake pattern that ran (or is running).
type Mode int

// Handshake patterns. WhatsApp Web and whatsapp-rust resume a registered
// session with IK when they cached the server's certificate chain; a server
// whose static key is no longer the cached one answers with its static, and
// both sides finish as XXfallback (CHANGES-2026 §7, PROTOCOL.md §3.5).
const (
	ModeXX         Mode = iota + 1 // full handshake, three messages
	ModeIK                         // resume accepted, two messages
	ModeXXFallback                 // resume refused, finished like XX
)

func (m Mode) String() string {
	switch m {
	case ModeXX:
		return "XX"
	case ModeIK:
		return "IK"
	case ModeXXFallback:
		return "XXfallback"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// IKPolicy says how a Responder answers an IK client hello.
type IKPolicy int

// IK policies. The zero value is what WhatsApp does.
const (
	// IKAccept accepts a resume made for the responder's static key and
	// answers any other with XXfallback.
	IKAccept IKPolicy = iota
	// IKFallback always answers with XXfallback, as a server does right
	// after rotating its static key.
	IKFallback
	// IKRefuse refuses IK client hellos with ErrUnsupported (the caller
	// then closes the connection), as an XX-only server would.
	IKRefuse
)

func (p IKPolicy) String() string {
	switch p {
	case IKAccept:
		return "accept"
	case IKFallback:
		return "fallback"
	case IKRefuse:
		return "refuse"
	}
	return fmt.Sprintf("IKPolicy(%d)", int(p))
}

// ParseIKPolicy maps "accept" (or ""), "fallback" and "refuse" to a policy.
func ParseIKPolicy(s string) (IKPolicy, error) {
	switch s {
	case "", "accept":
		return IKAccept, nil
	case "fallback":
		return IKFallback, nil
	case "refuse":
		return IKRefuse, nil
	}
	return 0, fmt.Errorf("%w: ik policy %q: want accept, fallback or refuse", ErrBadConfig, s)
}

// CheckValidity reports whether now lies inside both validity windows of a
// cached chain (whole unix seconds, inclusive, as VerifyCertChain checks
// them); failures are *CertError. A client must not attempt IK with a
// chain that fails it (CHANGES-2026 §7).
func (c *CertInfo) CheckValidity(now time.Time) error {
	if c == nil || c.LeafKey.IsZero() {
		return &CertError{Reason: CertMalformed}
	}
	t := now.Unix()
	for _, w := range []struct {
		which  string
		nb, na time.Time
	}{
		{"intermediate", c.IntermediateNotBefore, c.IntermediateNotAfter},
		{"leaf", c.LeafNotBefore, c.LeafNotAfter},
	} {
		if t < w.nb.Unix() {
			return &CertError{Reason: CertNotYetValid, Cert: w.which}
		}
		if t > w.na.Unix() {
			return &CertError{Reason: CertExpired, Cert: w.which}
		}
	}
	return nil
}

// Mode reports the pattern chosen so far: zero before the first message,
// ModeIK from ResumeHello until a server hello with static turns it into
// ModeXXFallback.
func (in *Initiator) Mode() Mode { return in.mode }

// ServerCert returns what the server's certificate chain certified: the
// chain of message 2 after XX or XXfallback, the chain of an accepted
// resume when the server sent one, else cfg.Resume. A client caches it for
// its next ResumeHello. It is nil before the server hello and with
// InsecureSkipVerify.
func (in *Initiator) ServerCert() *CertInfo { return in.cert }

// ResumeHello returns message 1 of an IK resume (CHANGES-2026 §7),
// carrying payload (a serialized login ClientPayload), encrypted to the
// server static key of cfg.Resume. Unless InsecureSkipVerify, both cached
// certificates must be valid at cfg.Time(), else a *CertError (run XX).
//
//	h = ck = "Noise_IK_25519_AESGCM_SHA256\0\0\0\0"; MixHash(prologue)
//	MixHash(rs)                  pre-message: the cached leaf key
//	MixHash(e.pub)               (no payload hash, as in XX message 1)
//	MixKey(DH(e, rs))            es
//	c1 = EncryptAndHash(s.pub)   n=0
//	MixKey(DH(s, rs))            ss
//	c2 = EncryptAndHash(payload) n=0
//
//	HandshakeMessage{clientHello(2){ephemeral(1) = e.pub, static(2) = c1, payload(3) = c2}}
func (in *Initiator) ResumeHello(payload []byte) ([]byte, error) {
	if in.state != stateStart {
		return nil, ErrHandshakeState
	}
	res := in.cfg.Resume
	if res == nil || res.LeafKey.IsZero() {
		return nil, in.fail(fmt.Errorf("%w: initiator: IK resume needs a cached certificate chain", ErrBadConfig))
	}
	if !in.cfg.InsecureSkipVerify {
		if err := res.CheckValidity(in.cfg.Time()); err != nil {
			return nil, in.fail(err)
		}
	}
	if err := in.newEphemeral(); err != nil {
		return nil, in.fail(err)
	}
	in.mode = ModeIK
	in.rs = res.LeafKey
	in.ss.init(ProtocolIK, in.cfg.Prologue[:])
	in.ss.mixHashKey(in.rs)
	in.ss.step("rs")
	// HandshakeMessage{clientHello{ephemeral, static, payload}}, the
	// ciphertexts sealed into it.
	c2Len := len(payload) + tagLen
	msg := newMessage(fieldClientHello, fieldSize(fieldHelloEphemeral, keys.Size)+
		fieldSize(fieldHelloStatic, staticCTLen)+fieldSize(fieldHelloPayload, c2Len))
	msg = appendKeyField(msg, fieldHelloEphemeral, in.e.Public)
	in.ss.mixHashKey(in.e.Public)
	in.ss.step("e")
	if err := in.dh(in.e.Private, in.rs, "es"); err != nil {
		return nil, in.fail(err)
	}
	msg = appendFieldHeader(msg, fieldHelloStatic, staticCTLen)
	msg, err := in.ss.encryptKeyAndHash(msg, in.cfg.Static.Public)
	if err != nil {
		return nil, in.fail(err)
	}
	in.ss.step("s")
	if err := in.dh(in.cfg.Static.Private, in.rs, "ss"); err != nil {
		return nil, in.fail(err)
	}
	msg = appendFieldHeader(msg, fieldHelloPayload, c2Len)
	msg, err = in.ss.encryptAndHash(msg, payload)
	if err != nil {
		return nil, in.fail(err)
	}
	in.ss.step("payload")
	in.state = stateWaitPeer
	return msg, nil
}

// readIKAccept completes an accepted resume:
//
//	HandshakeMessage{serverHello(3){ephemeral(1) = re, payload(3) = enc(chain or empty)}}
//
//	MixHash(re); MixKey(DH(e, re)) ee; MixKey(DH(s, re)) se;
//	DecryptAndHash(payload); Split.
func (in *Initiator) readIKAccept(sh *messagePart) (keys.PublicKey, []byte, error) {
	if len(sh.field(fieldHelloEphemeral)) != keys.Size || len(sh.field(fieldHelloPayload)) < tagLen {
		return keys.PublicKey{}, nil, in.fail(fmt.Errorf("%w: server hello fields have wrong sizes", ErrBadMessage))
	}
	in.re, _ = keys.PublicKeyFromBytes(sh.field(fieldHelloEphemeral))
	in.ss.mixHashKey(in.re)
	in.ss.step("re")
	if err := in.dh(in.e.Private, in.re, "ee"); err != nil {
		return keys.PublicKey{}, nil, in.fail(err)
	}
	if err := in.dh(in.cfg.Static.Private, in.re, "se"); err != nil {
		return keys.PublicKey{}, nil, in.fail(err)
	}
	chain, err := in.ss.decryptAndHash(nil, sh.field(fieldHelloPayload))
	if err != nil {
		return keys.PublicKey{}, nil, in.fail(fmt.Errorf("%w (server resume payload)", err))
	}
	in.ss.step("payload")
	// The payload decrypting proves the server holds the cached static
	// key; a chain in it is checked as in XX and refreshes the cache.
	in.cert = in.cfg.Resume
	if len(chain) == 0 {
		chain = nil
	} else if !in.cfg.InsecureSkipVerify {
		info, err := in.cfg.Chains.Parse(chain, in.cfg.RootKey, in.rs, in.cfg.Time())
		if err != nil {
			return keys.PublicKey{}, nil, in.fail(err)
		}
		in.cert = info
	}
	k1, k2, err := in.ss.split()
	if err != nil {
		return keys.PublicKey{}, nil, in.fail(err)
	}
	c, err := NewCipher(k1, k2)
	clear(k1)
	clear(k2)
	if err != nil {
		return keys.PublicKey{}, nil, in.fail(err)
	}
	in.ss.destroy()
	in.cipher = c
	in.state = stateResumed
	return in.rs, chain, nil
}

// startFallback pivots an IK attempt to XXfallback (the server hello
// carries its static, so it did not take the resume):
//
//	h = SHA-256("Noise_XXfallback_25519_AESGCM_SHA256"); ck = h
//	MixHash(prologue); MixHash(e.pub)   the ephemeral already sent
//
// after which message 2 is read exactly as in XX.
func (in *Initiator) startFallback() {
	in.mode = ModeXXFallback
	in.rs = keys.PublicKey{}
	in.ss.init(ProtocolXXFallback, in.cfg.Prologue[:])
	in.ss.mixHashKey(in.e.Public)
	in.ss.step("e")
}

// Mode reports the pattern ReadClientHello chose; zero before it.
func (r *Responder) Mode() Mode { return r.mode }

// readIKHello tries the IK client hello against the responder's static key
// (the mirror of ResumeHello) and pivots to XXfallback when it does not
// decrypt: the client assumed another static key, or the message was
// altered. Either way nothing of it is trusted then.
func (r *Responder) readIKHello(ch *messagePart) error {
	if r.cfg.IK == IKAccept {
		if len(ch.field(fieldHelloStatic)) != staticCTLen || len(ch.field(fieldHelloPayload)) < tagLen {
			return r.fail(fmt.Errorf("%w: IK client hello fields have wrong sizes", ErrBadMessage))
		}
		err := r.tryIK(ch)
		if err == nil {
			r.mode = ModeIK
			r.state = stateWaitPeer
			return nil
		}
		if !errors.Is(err, ErrDecrypt) {
			return r.fail(err)
		}
	}
	r.mode = ModeXXFallback
	r.rs = keys.PublicKey{}
	r.ss.init(ProtocolXXFallback, r.cfg.Prologue[:])
	r.ss.mixHashKey(r.re)
	r.ss.step("re")
	r.state = stateWaitPeer
	return nil
}

func (r *Responder) tryIK(ch *messagePart) error {
	r.ss.init(ProtocolIK, r.cfg.Prologue[:])
	r.ss.mixHashKey(r.cfg.Static.Public)
	r.ss.step("s")
	r.ss.mixHashKey(r.re)
	r.ss.step("re")
	if err := mixDH(&r.ss, r.cfg.Static.Private, r.re, "es"); err != nil {
		return err
	}
	rs, err := r.ss.decryptKeyAndHash(ch.field(fieldHelloStatic))
	if err != nil {
		return err
	}
	r.ss.step("rs")
	r.rs = rs
	if err := mixDH(&r.ss, r.cfg.Static.Private, r.rs, "ss"); err != nil {
		return err
	}
	p, err := r.ss.decryptAndHash(nil, ch.field(fieldHelloPayload))
	if err != nil {
		return err
	}
	r.ss.step("payload")
	r.ikPayload = p
	return nil
}

// ikServerHello writes the last message of an accepted resume; r.e is set.
//
//	MixHash(e.pub); MixKey(DH(e, re)) ee; MixKey(DH(e, rs)) se;
//	c = EncryptAndHash(certChain); Split.
//
//	HandshakeMessage{serverHello(3){ephemeral(1) = e.pub, payload(3) = c}}
func (r *Responder) ikServerHello(certChain []byte) ([]byte, error) {
	// HandshakeMessage{serverHello{ephemeral, payload}}, the ciphertext
	// sealed into it.
	cpLen := len(certChain) + tagLen
	msg := newMessage(fieldServerHello, fieldSize(fieldHelloEphemeral, keys.Size)+fieldSize(fieldHelloPayload, cpLen))
	msg = appendKeyField(msg, fieldHelloEphemeral, r.e.Public)
	r.ss.mixHashKey(r.e.Public)
	r.ss.step("e")
	if err := mixDH(&r.ss, r.e.Private, r.re, "ee"); err != nil {
		return nil, r.fail(err)
	}
	if err := mixDH(&r.ss, r.e.Private, r.rs, "se"); err != nil {
		return nil, r.fail(err)
	}
	msg = appendFieldHeader(msg, fieldHelloPayload, cpLen)
	msg, err := r.ss.encryptAndHash(msg, certChain)
	if err != nil {
		return nil, r.fail(err)
	}
	r.ss.step("payload")
	k1, k2, err := r.ss.split()
	if err != nil {
		return nil, r.fail(err)
	}
	c, err := NewCipher(k2, k1)
	clear(k1)
	clear(k2)
	if err != nil {
		return nil, r.fail(err)
	}
	r.ss.destroy()
	r.cipher = c
	r.state = stateResumed
	return msg, nil
}

// Resumed finishes an accepted IK resume after ServerHello, in place of
// ReadClientFinish, with the same results: the client's static key (the
// caller checks it against its registry), the login payload of message 1,
// and the transport cipher.
func (r *Responder) Resumed() (clientStatic keys.PublicKey, payload []byte, c *Cipher, err error) {
	if r.state != stateResumed {
		return keys.PublicKey{}, nil, nil, ErrHandshakeState
	}
	c, payload = r.cipher, r.ikPayload
	r.cipher, r.ikPayload = nil, nil
	r.state = stateDone
	return r.rs, payload, c, nil
}
