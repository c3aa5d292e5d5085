package noise

import (
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
	b := make([]byte, 0, fieldSize(num, inner))
	return appendFieldHeader(b, num, inner)
}

// appendKeyField appends a bytes field holding a public key.
func appendKeyField(b []byte, num protowire.Number, k keys.PublicKey) []byte {
	b = appendFieldHeader(b, num, keys.Size)
	a := k.Array()
	return append(b, a[:]...)
}
