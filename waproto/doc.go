// Package waproto holds walink's own protobuf definitions of the WhatsApp
// messages used for the Noise handshake, the client payload, the server
// certificate chain, ADV device identities and companion registration, with
// the field numbers of the real protocol (PROTOCOL.md §4, §5, §21 and
// CHANGES-2026.md §6).
//
// # Generated code
//
// The *.pb.go files are generated from the *.proto files beside them and are
// never edited by hand. Regenerate with
//
//	go generate ./waproto
//
// which runs ./internal/gen: it compiles the .proto files with
// github.com/bufbuild/protocompile and runs protoc-gen-go's generator
// in-process, both at the versions pinned in go.mod, so no system protoc is
// needed and the output is byte-identical everywhere. A test in
// ./internal/gen fails when the committed code is stale.
//
// # Names
//
// The proto package is walink.waproto, not WhatsApp's own package names, so
// these types can be linked into one binary beside another WhatsApp library
// without clashing in the global protobuf registry. Only the field numbers
// and wire types matter on the wire.
package waproto
