// Package binxml encodes and decodes WhatsApp's binary XML stanzas
// ("WABinary"), the payload of every transport frame after the Noise
// handshake.
//
// # Model
//
// A [Node] has a tag, ordered attributes ([Attr]: a string or a typed
// [jid.JID]) and optionally content: child nodes or bytes. The codec keeps
// attribute order, so decode→encode is stable, and writes exactly what it is
// given (an attribute with an empty value is written as an empty string).
//
// # Wire format
//
// A node is a list: a LIST_8/LIST_16 header counting 1 (tag) + 2 per
// attribute + 1 if there is content, then the tag, the key/value pairs and
// the content. Strings are written, in this order of preference (the order
// whatsmeow uses): a single-byte token, a double-byte token, NIBBLE_8
// packing (digits, '-', '.'), HEX_8 packing (0-9, A-F), raw BINARY_8/20/32.
// The empty string is BINARY_8 of length 0 (as Baileys and whatsapp-rust
// write it). Typed JIDs are JID_PAIR, AD_JID (PN/LID with a device, hosted
// servers, legacy agents), FB_JID (msgr) or INTEROP_JID (interop). A frame
// ([Marshal], [Unmarshal]) starts with a flags byte: 0x00, or 0x02 when the
// rest is zlib-compressed.
//
// # Dictionaries
//
// Tokens come from dictionary version 3 ([DictV3], the default) or 2
// ([DictV2], still sent by older clients); a server picks one with
// [DictionaryFor] from the 4th byte of the connection header. The tables
// are generated from tokens.json and tokens-v2.json by internal/gentokens.
//
// # Aliasing
//
// Decoded Content slices point into the frame given to [Unmarshal] (or into
// the inflated buffer of a compressed frame); their capacity is capped, so
// appending to one copies. Keep the frame unchanged while the node is in
// use, or copy the Content you keep. Tags, keys and values are always
// copies. A decode makes about three allocations whatever the frame size.
//
// # Limits and errors
//
// Decoding never allocates for lengths the input cannot hold, refuses
// nesting deeper than [MaxDepth], frames with more than [MaxNodes] nodes or
// [MaxAttrs] attributes, and inflated frames larger than [MaxInflated].
// Flag bits other than 0x02 are ignored, as whatsmeow does. The codec is
// byte-faithful: tags, keys and values are not required to be UTF-8 and
// decode as the bytes they are; [Node.String] escapes what is not printable
// UTF-8, and [Node.AttrJID] refuses JIDs whose raw user or server bytes are
// junk ([jid.JID.Validate]). Code that keeps or shows a value checks it
// (engine refuses a pair-success whose names are not text). Errors are [*DecodeError] / [*EncodeError] values wrapping
// one of [ErrTruncated], [ErrUnknownTag], [ErrLimit], [ErrMalformed],
// [ErrTrailingData] or [ErrInvalidNode]; test them with errors.Is.
//
// # Logging
//
// [Node.String] renders XML-ish text; [Format] does the same with a
// redaction hook so that key material never reaches the logs.
//
// The package is pure: no I/O, no clocks, no goroutines.
package binxml

//go:generate go run ./internal/gentokens
