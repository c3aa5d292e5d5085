package noise

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/walinkdev/walink/keys"
)

// The handshake messages are written by hand rather than with
// proto.Marshal of a waproto.HandshakeMessage: the fields are few and
// fixed, so a message is one allocation of its exact size, into which the
// ciphertexts are sealed directly, instead of the message structs, the
// ciphertext slices, a copy of each key and proto's buffer. The bytes are
// proto.Marshal's (fields in number order; TestMessagesMatchProto and the
// known-answer vectors check it).

// Field numbers of waproto.HandshakeMessage and its parts.
const (
	fieldClientHello  protowire.Number = 2
	fieldServerHello  protowire.Number = 3
	fieldClientFinish protowire.Number = 4

	fieldHelloEphemeral protowire.Number = 1 // ClientHello and ServerHello
	fieldHelloStatic    protowire.Number = 2
	fieldHelloPayload   protowire.Number = 3

	fieldFinishStatic  protowire.Number = 1
	fieldFinishPayload protowire.Number = 2
)

// fieldSize is the encoded size of a bytes field of n bytes.
func fieldSize(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// appendFieldHeader appends the tag and length of a bytes field of n
// bytes; the caller appends the n bytes.
func appendFieldHeader(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// newMessage returns a buffer for a HandshakeMessage whose only field is
// part (number num) of inner bytes, with the part's header written.
func newMessage(num protowire.Number, inner int) []byte {
	return appendMessage(nil, num, inner)
}

// appendMessage is newMessage appending to dst, grown once to fit the
// whole message.
func appendMessage(dst []byte, num protowire.Number, inner int) []byte {
	// By hand rather than slices.Grow, whose append of a made slice is
	// a second allocation when not inlined (with -race).
	if need := fieldSize(num, inner); cap(dst)-len(dst) < need {
		nb := make([]byte, len(dst), len(dst)+need)
		copy(nb, dst)
		dst = nb
	}
	return appendFieldHeader(dst, num, inner)
}

// appendKeyField appends a bytes field holding a public key.
func appendKeyField(b []byte, num protowire.Number, k keys.PublicKey) []byte {
	b = appendFieldHeader(b, num, keys.Size)
	a := k.Array()
	return append(b, a[:]...)
}

// errWireFormat is what a handshake message that is not valid protobuf
// wire format fails with (wrapped in ErrBadMessage).
var errWireFormat = errors.New("invalid wire-format data")

// handshakeMessage is what the handshake reads of a HandshakeMessage,
// parsed in place: its three parts, each with the bytes fields 1 to 3
// that every part has (ClientHello and ServerHello: ephemeral, static,
// payload; ClientFinish: static, payload, extendedCiphertext). Values
// alias the parsed message.
//
// It accepts and rejects exactly what proto.Unmarshal into a
// waproto.HandshakeMessage does and reads the same values
// (FuzzHandshakeMessage): every field, known or not, must be well-formed
// wire format (a field of a part other than the one wanted included); a
// part that occurs more than once is merged, the last value of a field
// winning; a field present but empty is non-nil. Unlike
// proto.Unmarshal it allocates nothing.
type handshakeMessage struct {
	parts [fieldClientFinish + 1]messagePart // by field number; 0 and 1 unused
}

type messagePart struct {
	present bool
	fields  [4][]byte // by field number; 0 unused
}

func (m *handshakeMessage) part(num protowire.Number) *messagePart {
	if p := &m.parts[num]; p.present {
		return p
	}
	return nil
}

// field returns field num of a part, nil for none (or for a nil part, as
// the generated getters do).
func (p *messagePart) field(num protowire.Number) []byte {
	if p == nil {
		return nil
	}
	return p.fields[num]
}

func (m *handshakeMessage) parse(b []byte) error {
	*m = handshakeMessage{}
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWireFormat
		}
		b = b[n:]
		if num >= fieldClientHello && num <= fieldClientFinish && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireFormat
			}
			b = b[n:]
			p := &m.parts[num]
			p.present = true
			if err := p.parse(v); err != nil {
				return err
			}
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return errWireFormat
		}
		b = b[n:]
	}
	return nil
}

func (p *messagePart) parse(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWireFormat
		}
		b = b[n:]
		if num < protowire.Number(len(p.fields)) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireFormat
			}
			b = b[n:]
			p.fields[num] = v
			continue
		}
		// Another field (ClientHello's useExtended, a field this
		// version does not know), or a known one of another wire type,
		// which proto.Unmarshal keeps as unknown: either way it only
		// has to be well-formed.
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return errWireFormat
		}
		b = b[n:]
	}
	return nil
}

// consumeTag is protowire.ConsumeTag with proto.Unmarshal's further
// checks: a field number of at most MaxValidNumber, no stray end-group.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num > protowire.MaxValidNumber || typ == protowire.EndGroupType {
		return 0, 0, -1
	}
	return num, typ, n
}
