package noise

import (
	"fmt"
	"io"
	"time"

	"github.com/walinkdev/walink/keys"
)

// staticCTLen is the size of an encrypted static key: 32 + GCM tag.
const staticCTLen = keys.Size + tagLen

type hsState int

const (
	stateStart hsState = iota
	stateWaitPeer
	stateReady
	stateResumed // IK accepted: keys split, no message 3
	stateDone
	stateFailed
)

// InitiatorConfig configures NewInitiator.
type InitiatorConfig struct {
	// Static is the client's long-term noise key pair (required).
	Static keys.KeyPair
	// Prologue is the connection header the client sends; zero means
	// HeaderV3.
	Prologue [4]byte
	// Rand supplies the ephemeral key; required unless Ephemeral is set.
	Rand io.Reader
	// Ephemeral fixes the ephemeral key pair instead of drawing one from
	// Rand. Only known-answer tests want this.
	Ephemeral *keys.KeyPair
	// RootKey is the certificate root the server's chain must lead to; zero
	// means WhatsAppRootKey.
	RootKey keys.PublicKey
	// Time returns the current time for the certificate validity check
	// (required unless InsecureSkipVerify).
	Time func() time.Time
	// InsecureSkipVerify accepts any server certificate chain. The server
	// static key is still authenticated by the handshake itself, but not
	// tied to WhatsApp. For tests of other layers only.
	InsecureSkipVerify bool
	// Chains, when set, caches verified certificate chains across
	// handshakes (see ChainCache); nil verifies every chain in full.
	Chains *ChainCache
	// Resume is the certificate chain an earlier handshake verified (see
	// ParseCertChain and Initiator.ServerCert). Only ResumeHello uses it:
	// its leaf key is the server static key assumed by the IK resume, and
	// both validity windows must contain Time().
	Resume *CertInfo
}

// Initiator is the client side of WhatsApp's Noise XX handshake:
//
//	-> e                          ClientHello()
//	<- e, ee, s, es  + cert chain ReadServerHello(msg2)
//	-> s, se         + payload    ClientFinish(payload)
//
// It differs from stock Noise XX in that the empty payload of message 1
// is not hashed and nonces are 32-bit. Methods must be called in this
// order; any error ends the handshake (ErrHandshakeState afterwards).
//
// ResumeHello replaces ClientHello for an IK resume; ReadServerHello then
// either completes it (ClientFinish returns no message) or continues as
// XXfallback, see [Mode].
type Initiator struct {
	cfg    InitiatorConfig
	ss     symmetricState
	e      keys.KeyPair
	re, rs keys.PublicKey
	state  hsState
	mode   Mode
	cipher *Cipher // set when an IK resume was accepted
	cert   *CertInfo
}

// NewInitiator returns a client handshake that has not sent anything yet.
func NewInitiator(cfg InitiatorConfig) (*Initiator, error) {
	if cfg.Static.Private.IsZero() {
		return nil, fmt.Errorf("%w: initiator: missing static key", ErrBadConfig)
	}
	if cfg.Ephemeral == nil && cfg.Rand == nil {
		return nil, fmt.Errorf("%w: initiator: Rand or Ephemeral is required", ErrBadConfig)
	}
	if cfg.Time == nil && !cfg.InsecureSkipVerify {
		return nil, fmt.Errorf("%w: initiator: Time is required to verify the server certificate", ErrBadConfig)
	}
	if cfg.Prologue == [4]byte{} {
		cfg.Prologue = HeaderV3
	}
	if cfg.RootKey.IsZero() {
		cfg.RootKey = WhatsAppRootKey
	}
	return &Initiator{cfg: cfg}, nil
}

func (in *Initiator) fail(err error) error {
	in.state = stateFailed
	in.ss.destroy()
	return err
}

// ClientHello returns message 1, a serialized HandshakeMessage (frame it
// with AppendIntro and AppendFrame).
//
//	HandshakeMessage{clientHello(2){ephemeral(1) = e.pub}}
func (in *Initiator) ClientHello() ([]byte, error) {
	msg, err := in.AppendClientHello(nil)
	if err != nil {
		return nil, err
	}
	return msg, nil
}

// AppendClientHello is ClientHello appending message 1 to dst (on error it
// returns dst unchanged): for a caller that writes it straight into its
// frame buffer rather than copying it there.
func (in *Initiator) AppendClientHello(dst []byte) ([]byte, error) {
	if in.state != stateStart {
		return dst, ErrHandshakeState
	}
	if err := in.newEphemeral(); err != nil {
		return dst, in.fail(err)
	}
	in.mode = ModeXX
	in.ss.init(ProtocolXX, in.cfg.Prologue[:])
	in.ss.mixHashKey(in.e.Public)
	// WhatsApp deviation: no MixHash of the (empty) message-1 payload.
	in.ss.step("e")
	msg := appendMessage(dst, fieldClientHello, fieldSize(fieldHelloEphemeral, keys.Size))
	msg = appendKeyField(msg, fieldHelloEphemeral, in.e.Public)
	in.state = stateWaitPeer
	return msg, nil
}

func (in *Initiator) newEphemeral() error {
	if in.cfg.Ephemeral != nil {
		in.e = *in.cfg.Ephemeral
		return nil
	}
	e, err := keys.NewKeyPair(in.cfg.Rand)
	if err != nil {
		return fmt.Errorf("noise: ephemeral key: %w", err)
	}
	in.e = e
	return nil
}

// ReadServerHello processes message 2. It returns the server's static key
// and the decrypted certificate chain, which it has already verified
// against cfg.RootKey and cfg.Time (unless InsecureSkipVerify); a failed
// check is a *CertError.
//
//	HandshakeMessage{serverHello(3){ephemeral(1) = e.pub, static(2) = enc(s.pub),
//	                                payload(3) = enc(CertChain)}}
//
// After ResumeHello, a server hello without static accepts the resume (the
// chain, when the server sent one, is verified against the cached leaf key;
// an empty one is returned as nil) and one with static switches to
// XXfallback; Mode tells which.
func (in *Initiator) ReadServerHello(msg []byte) (serverStatic keys.PublicKey, certChain []byte, err error) {
	if in.state != stateWaitPeer {
		return keys.PublicKey{}, nil, ErrHandshakeState
	}
	var hm handshakeMessage
	if err := hm.parse(msg); err != nil {
		return keys.PublicKey{}, nil, in.fail(fmt.Errorf("%w: server hello: %w", ErrBadMessage, err))
	}
	sh := hm.part(fieldServerHello)
	if sh == nil {
		return keys.PublicKey{}, nil, in.fail(fmt.Errorf("%w: no server hello", ErrBadMessage))
	}
	if in.mode == ModeIK {
		if sh.field(fieldHelloStatic) == nil {
			return in.readIKAccept(sh)
		}
		in.startFallback()
	}
	if len(sh.field(fieldHelloEphemeral)) != keys.Size || len(sh.field(fieldHelloStatic)) != staticCTLen || len(sh.field(fieldHelloPayload)) < tagLen {
		return keys.PublicKey{}, nil, in.fail(fmt.Errorf("%w: server hello fields have wrong sizes", ErrBadMessage))
	}
	re, _ := keys.PublicKeyFromBytes(sh.field(fieldHelloEphemeral))
	in.re = re
	in.ss.mixHashKey(re)
	in.ss.step("re")
	if err := in.dh(in.e.Private, re, "ee"); err != nil {
		return keys.PublicKey{}, nil, in.fail(err)
	}
	rs, err := in.ss.decryptKeyAndHash(sh.field(fieldHelloStatic))
	if err != nil {
		return keys.PublicKey{}, nil, in.fail(fmt.Errorf("%w (server static)", err))
	}
	in.ss.step("s")
	in.rs = rs
	if err := in.dh(in.e.Private, rs, "es"); err != nil {
		return keys.PublicKey{}, nil, in.fail(err)
	}
	chain, err := in.ss.decryptAndHash(nil, sh.field(fieldHelloPayload))
	if err != nil {
		return keys.PublicKey{}, nil, in.fail(fmt.Errorf("%w (server certificate payload)", err))
	}
	in.ss.step("payload")
	if !in.cfg.InsecureSkipVerify {
		info, err := in.cfg.Chains.Parse(chain, in.cfg.RootKey, rs, in.cfg.Time())
		if err != nil {
			return keys.PublicKey{}, nil, in.fail(err)
		}
		in.cert = info
	}
	in.state = stateReady
	return rs, chain, nil
}

func (in *Initiator) dh(priv keys.PrivateKey, pub keys.PublicKey, step string) error {
	return mixDH(&in.ss, priv, pub, step)
}

func mixDH(ss *symmetricState, priv keys.PrivateKey, pub keys.PublicKey, step string) error {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return fmt.Errorf("noise: %s: %w", step, err)
	}
	err = ss.mixKey(shared)
	clear(shared)
	if err != nil {
		return err
	}
	ss.step(step)
	return nil
}

// ClientFinish returns message 3 carrying the encrypted payload (a
// serialized ClientPayload) and the transport cipher: it seals with the
// client-to-server key and opens with the server-to-client key.
//
//	HandshakeMessage{clientFinish(4){static(1) = enc(s.pub), payload(2) = enc(payload)}}
//
// After an accepted IK resume there is no message 3: ClientFinish returns
// a nil message and the cipher, and ignores payload (it went in message 1).
// After XXfallback it sends payload again: the server discarded the copy
// in message 1.
func (in *Initiator) ClientFinish(payload []byte) ([]byte, *Cipher, error) {
	msg, c, err := in.AppendClientFinish(nil, payload)
	if err != nil {
		return nil, nil, err
	}
	return msg, c, nil
}

// AppendClientFinish is ClientFinish appending message 3 to dst (on error
// it returns dst unchanged; after an accepted IK resume it returns dst
// and the cipher): for a caller that writes it straight into its frame
// buffer rather than copying it there. dst's spare capacity must not
// overlap payload.
func (in *Initiator) AppendClientFinish(dst, payload []byte) ([]byte, *Cipher, error) {
	if in.state == stateResumed {
		c := in.cipher
		in.cipher = nil
		in.state = stateDone
		return dst, c, nil
	}
	if in.state != stateReady {
		return dst, nil, ErrHandshakeState
	}
	// HandshakeMessage{clientFinish{static, payload}}, the ciphertexts
	// sealed into it.
	cpLen := len(payload) + tagLen
	msg := appendMessage(dst, fieldClientFinish, fieldSize(fieldFinishStatic, staticCTLen)+fieldSize(fieldFinishPayload, cpLen))
	msg = appendFieldHeader(msg, fieldFinishStatic, staticCTLen)
	msg, err := in.ss.encryptKeyAndHash(msg, in.cfg.Static.Public)
	if err != nil {
		return dst, nil, in.fail(err)
	}
	in.ss.step("s")
	if err := in.dh(in.cfg.Static.Private, in.re, "se"); err != nil {
		return dst, nil, in.fail(err)
	}
	msg = appendFieldHeader(msg, fieldFinishPayload, cpLen)
	msg, err = in.ss.encryptAndHash(msg, payload)
	if err != nil {
		return dst, nil, in.fail(err)
	}
	in.ss.step("payload")
	k1, k2, err := in.ss.split()
	if err != nil {
		return dst, nil, in.fail(err)
	}
	c, err := NewCipher(k1, k2)
	clear(k1)
	clear(k2)
	if err != nil {
		return dst, nil, in.fail(err)
	}
	in.ss.destroy()
	in.state = stateDone
	return msg, c, nil
}

// ResponderConfig configures NewResponder.
type ResponderConfig struct {
	// Static is the server's noise key pair; its public key must be the
	// leaf key of the certificate chain it sends (required).
	Static keys.KeyPair
	// Prologue is the connection header the client sent (see
	// Decoder.Header); zero means HeaderV3.
	Prologue [4]byte
	// Rand supplies the ephemeral key; required unless Ephemeral is set.
	Rand io.Reader
	// Ephemeral fixes the ephemeral key pair (known-answer tests only).
	Ephemeral *keys.KeyPair
	// IK says how to answer an IK client hello; the zero value accepts it
	// when it was made for Static, and falls back to XX otherwise.
	IK IKPolicy
}

// Responder is the server side of WhatsApp's Noise XX handshake:
// ReadClientHello(msg1), ServerHello(certChain) → msg2,
// ReadClientFinish(msg3) → client key, payload, transport cipher.
// Any error ends the handshake.
//
// An IK client hello is answered per ResponderConfig.IK: when accepted,
// ServerHello(certChain) returns the last message and Resumed takes the
// place of ReadClientFinish; see [Mode].
type Responder struct {
	cfg       ResponderConfig
	ss        symmetricState
	e         keys.KeyPair
	re, rs    keys.PublicKey
	state     hsState
	mode      Mode
	ikPayload []byte // the accepted IK payload, until Resumed
	cipher    *Cipher
}

// NewResponder returns a server handshake waiting for message 1.
func NewResponder(cfg ResponderConfig) (*Responder, error) {
	if cfg.Static.Private.IsZero() {
		return nil, fmt.Errorf("%w: responder: missing static key", ErrBadConfig)
	}
	if cfg.Ephemeral == nil && cfg.Rand == nil {
		return nil, fmt.Errorf("%w: responder: Rand or Ephemeral is required", ErrBadConfig)
	}
	if cfg.Prologue == [4]byte{} {
		cfg.Prologue = HeaderV3
	}
	return &Responder{cfg: cfg}, nil
}

func (r *Responder) fail(err error) error {
	r.state = stateFailed
	r.ss.destroy()
	return err
}

// ReadClientHello processes message 1. A client hello carrying IK fields
// (static or payload) is an IK resume, handled per ResponderConfig.IK:
// accepted if it decrypts under Static, otherwise answered with XXfallback;
// with IKRefuse it is refused with ErrUnsupported.
func (r *Responder) ReadClientHello(msg []byte) error {
	if r.state != stateStart {
		return ErrHandshakeState
	}
	var hm handshakeMessage
	if err := hm.parse(msg); err != nil {
		return r.fail(fmt.Errorf("%w: client hello: %w", ErrBadMessage, err))
	}
	ch := hm.part(fieldClientHello)
	if ch == nil {
		return r.fail(fmt.Errorf("%w: no client hello", ErrBadMessage))
	}
	ik := ch.field(fieldHelloStatic) != nil || ch.field(fieldHelloPayload) != nil
	if ik && r.cfg.IK == IKRefuse {
		return r.fail(fmt.Errorf("%w: IK client hello", ErrUnsupported))
	}
	if e := ch.field(fieldHelloEphemeral); len(e) != keys.Size {
		return r.fail(fmt.Errorf("%w: client ephemeral is %d bytes", ErrBadMessage, len(e)))
	}
	r.re, _ = keys.PublicKeyFromBytes(ch.field(fieldHelloEphemeral))
	if ik {
		return r.readIKHello(ch)
	}
	r.mode = ModeXX
	r.ss.init(ProtocolXX, r.cfg.Prologue[:])
	r.ss.mixHashKey(r.re)
	r.ss.step("re")
	r.state = stateWaitPeer
	return nil
}

// ServerHello returns message 2, carrying certChain (a serialized
// CertChain whose leaf key is the static public key, see NewCertChain).
// When an IK resume was accepted it is the last message (ephemeral and the
// encrypted certChain, no static); call Resumed next.
func (r *Responder) ServerHello(certChain []byte) ([]byte, error) {
	msg, err := r.AppendServerHello(nil, certChain)
	if err != nil {
		return nil, err
	}
	return msg, nil
}

// AppendServerHello is ServerHello appending message 2 to dst (on error it
// returns dst unchanged): for a caller that writes it straight into its
// frame buffer rather than copying it there. dst's spare capacity must
// not overlap certChain.
func (r *Responder) AppendServerHello(dst, certChain []byte) ([]byte, error) {
	if r.state != stateWaitPeer {
		return dst, ErrHandshakeState
	}
	if r.cfg.Ephemeral != nil {
		r.e = *r.cfg.Ephemeral
	} else {
		e, err := keys.NewKeyPair(r.cfg.Rand)
		if err != nil {
			return dst, r.fail(fmt.Errorf("noise: ephemeral key: %w", err))
		}
		r.e = e
	}
	if r.mode == ModeIK {
		msg, err := r.ikServerHello(certChain)
		if err != nil {
			return dst, err
		}
		return append(dst, msg...), nil
	}
	// HandshakeMessage{serverHello{ephemeral, static, payload}}, the
	// ciphertexts sealed into it.
	cpLen := len(certChain) + tagLen
	msg := appendMessage(dst, fieldServerHello, fieldSize(fieldHelloEphemeral, keys.Size)+
		fieldSize(fieldHelloStatic, staticCTLen)+fieldSize(fieldHelloPayload, cpLen))
	msg = appendKeyField(msg, fieldHelloEphemeral, r.e.Public)
	r.ss.mixHashKey(r.e.Public)
	r.ss.step("e")
	if err := mixDH(&r.ss, r.e.Private, r.re, "ee"); err != nil {
		return dst, r.fail(err)
	}
	msg = appendFieldHeader(msg, fieldHelloStatic, staticCTLen)
	msg, err := r.ss.encryptKeyAndHash(msg, r.cfg.Static.Public)
	if err != nil {
		return dst, r.fail(err)
	}
	r.ss.step("s")
	if err := mixDH(&r.ss, r.cfg.Static.Private, r.re, "es"); err != nil {
		return dst, r.fail(err)
	}
	msg = appendFieldHeader(msg, fieldHelloPayload, cpLen)
	msg, err = r.ss.encryptAndHash(msg, certChain)
	if err != nil {
		return dst, r.fail(err)
	}
	r.ss.step("payload")
	r.state = stateReady
	return msg, nil
}

// ReadClientFinish processes message 3. It returns the client's static
// (noise) key, which the caller must check against its registry, the
// decrypted payload (a serialized ClientPayload), and the transport cipher:
// it seals with the server-to-client key.
func (r *Responder) ReadClientFinish(msg []byte) (clientStatic keys.PublicKey, payload []byte, c *Cipher, err error) {
	if r.state != stateReady {
		return keys.PublicKey{}, nil, nil, ErrHandshakeState
	}
	var hm handshakeMessage
	if err := hm.parse(msg); err != nil {
		return keys.PublicKey{}, nil, nil, r.fail(fmt.Errorf("%w: client finish: %w", ErrBadMessage, err))
	}
	cf := hm.part(fieldClientFinish)
	if cf == nil {
		return keys.PublicKey{}, nil, nil, r.fail(fmt.Errorf("%w: no client finish", ErrBadMessage))
	}
	if len(cf.field(fieldFinishStatic)) != staticCTLen || len(cf.field(fieldFinishPayload)) < tagLen {
		return keys.PublicKey{}, nil, nil, r.fail(fmt.Errorf("%w: client finish fields have wrong sizes", ErrBadMessage))
	}
	r.rs, err = r.ss.decryptKeyAndHash(cf.field(fieldFinishStatic))
	if err != nil {
		return keys.PublicKey{}, nil, nil, r.fail(fmt.Errorf("%w (client static)", err))
	}
	r.ss.step("rs")
	if err := mixDH(&r.ss, r.e.Private, r.rs, "se"); err != nil {
		return keys.PublicKey{}, nil, nil, r.fail(err)
	}
	payload, err = r.ss.decryptAndHash(nil, cf.field(fieldFinishPayload))
	if err != nil {
		return keys.PublicKey{}, nil, nil, r.fail(fmt.Errorf("%w (client payload)", err))
	}
	r.ss.step("payload")
	k1, k2, err := r.ss.split()
	if err != nil {
		return keys.PublicKey{}, nil, nil, r.fail(err)
	}
	c, err = NewCipher(k2, k1)
	clear(k1)
	clear(k2)
	if err != nil {
		return keys.PublicKey{}, nil, nil, r.fail(err)
	}
	r.ss.destroy()
	r.state = stateDone
	return r.rs, payload, c, nil
}
