package binxml

import (
	"errors"
	"fmt"
)

// Conditions reported by the codec, wrapped in [*DecodeError] or
// [*EncodeError].
var (
	// ErrTruncated: the input ends before a value it announces.
	ErrTruncated = errors.New("binxml: truncated input")
	// ErrUnknownTag: a type byte or dictionary the codec does not know.
	ErrUnknownTag = errors.New("binxml: unknown tag")
	// ErrLimit: nesting, size or count beyond what the codec accepts.
	ErrLimit = errors.New("binxml: limit exceeded")
	// ErrMalformed: bytes that are not a valid node (e.g. a list where a
	// string belongs, an empty tag, a bad packed digit).
	ErrMalformed = errors.New("binxml: malformed node")
	// ErrTrailingData: bytes left after the root node.
	ErrTrailingData = errors.New("binxml: trailing data after node")
	// ErrInvalidNode: the encoder was given a node it cannot write.
	ErrInvalidNode = errors.New("binxml: invalid node")
	// ErrUnknownDictionary: no dictionary with that version.
	ErrUnknownDictionary = errors.New("binxml: unknown dictionary version")
)

// DecodeError locates a decoding failure. Offset counts bytes from the start
// of the node data (after the flags byte and, for compressed frames, after
// inflation).
type DecodeError struct {
	Offset int
	Err    error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("%v (at offset %d)", e.Err, e.Offset) }

// Unwrap returns the underlying condition.
func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError locates an encoding failure by the path of tags from the root
// node, e.g. "iq/pair-device/ref[2]".
type EncodeError struct {
	Path string
	Err  error
}

func (e *EncodeError) Error() string { return fmt.Sprintf("%v (at %s)", e.Err, e.Path) }

// Unwrap returns the underlying condition.
func (e *EncodeError) Unwrap() error { return e.Err }
