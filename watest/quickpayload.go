package watest

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/walinkdev/walink/waproto"
)

// clientPayload is what the server reads of the client's ClientPayload
// (PROTOCOL.md §6): decodePayload fills it straight from the wire, without
// proto.Unmarshal's ~15 allocations per connection, or from the decoded
// message when the quick reader leaves the payload to it.
type clientPayload struct {
	hasUsername bool // a login
	username    uint64
	device      uint32
	appVersion  version // zero when absent
	hasPairing  bool    // a registration
	pairing     pairingData
}

// pairingData is DevicePairingRegistrationData's fields. The byte slices
// may alias the payload: parseRegistration copies what it keeps.
type pairingData struct {
	eRegid, eKeytype, eIdent, eSkeyID, eSkeyVal, eSkeySig, deviceProps []byte
}

// Field numbers (client_payload.proto).
const (
	cpUsername          = 1
	cpUserAgent         = 5
	cpDevice            = 18
	cpDevicePairingData = 19
	uaAppVersion        = 2
)

// errMalformedPayload reports a ClientPayload proto.Unmarshal refuses.
type errMalformedPayload struct{ err error }

func (e *errMalformedPayload) Error() string { return "watest: client payload: " + e.err.Error() }
func (e *errMalformedPayload) Unwrap() error { return e.err }

// decodePayload reads the client's payload: quickly when it can, else with
// proto.Unmarshal, with the same result either way (FuzzQuickRegistration).
func decodePayload(b []byte) (clientPayload, error) {
	var p clientPayload
	if quickPayload(b, &p) {
		return p, nil
	}
	var m waproto.ClientPayload
	if err := proto.Unmarshal(b, &m); err != nil {
		return clientPayload{}, &errMalformedPayload{err}
	}
	return payloadOf(&m), nil
}

// payloadOf takes the fields from a decoded message.
func payloadOf(m *waproto.ClientPayload) clientPayload {
	av := m.GetUserAgent().GetAppVersion()
	p := clientPayload{
		hasUsername: m.Username != nil,
		username:    m.GetUsername(),
		device:      m.GetDevice(),
		appVersion:  version{av.GetPrimary(), av.GetSecondary(), av.GetTertiary()},
	}
	if d := m.GetDevicePairingData(); d != nil {
		p.hasPairing = true
		p.pairing = pairingData{
			eRegid: d.GetERegid(), eKeytype: d.GetEKeytype(), eIdent: d.GetEIdent(),
			eSkeyID: d.GetESkeyID(), eSkeyVal: d.GetESkeyVal(), eSkeySig: d.GetESkeySig(),
			deviceProps: d.GetDeviceProps(),
		}
	}
	return p
}

var (
	clientPayloadDesc = (*waproto.ClientPayload)(nil).ProtoReflect().Descriptor()
)

// quickPayload reads b into p when it can tell that proto.Unmarshal would
// accept b and give the same fields: b must be well formed as
// proto.Unmarshal checks it (every field's wire syntax, the inside of
// known message fields and of packed repeated fields), without groups or
// maps, and each field the server reads must appear at most once (a
// repeated message merges, a repeated scalar's last wins: left to
// proto.Unmarshal). A field with a wire type other than its declared one
// is an unknown field to proto.Unmarshal and is skipped here too. False
// leaves the payload to proto.Unmarshal.
func quickPayload(b []byte, p *clientPayload) bool {
	if !wireValid(b, clientPayloadSchema, 0) {
		return false
	}
	var seen [cpDevicePairingData + 1]bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		v := b[:n]
		b = b[n:]
		switch {
		case num == cpUsername && typ == protowire.VarintType,
			num == cpDevice && typ == protowire.VarintType,
			num == cpUserAgent && typ == protowire.BytesType,
			num == cpDevicePairingData && typ == protowire.BytesType:
		default:
			continue
		}
		if seen[num] {
			return false
		}
		seen[num] = true
		switch num {
		case cpUsername:
			p.hasUsername = true
			p.username, _ = protowire.ConsumeVarint(v)
		case cpDevice:
			x, _ := protowire.ConsumeVarint(v)
			p.device = uint32(x)
		case cpUserAgent:
			ua, _ := protowire.ConsumeBytes(v)
			if !quickAppVersion(ua, &p.appVersion) {
				return false
			}
		case cpDevicePairingData:
			d, _ := protowire.ConsumeBytes(v)
			p.hasPairing = true
			if !quickPairing(d, &p.pairing) {
				return false
			}
		}
	}
	return true
}

// quickAppVersion reads UserAgent.appVersion's three numbers from ua
// (checked by wireValid).
func quickAppVersion(ua []byte, v *version) bool {
	var f [uaAppVersion + 1][]byte
	if !fieldsOnce(ua, protowire.BytesType, f[:]) {
		return false
	}
	if f[uaAppVersion] == nil {
		return true
	}
	av, _ := protowire.ConsumeBytes(f[uaAppVersion])
	var n [4][]byte // primary = 1, secondary = 2, tertiary = 3
	if !fieldsOnce(av, protowire.VarintType, n[:]) {
		return false
	}
	for i := range v {
		if n[i+1] != nil {
			x, _ := protowire.ConsumeVarint(n[i+1])
			v[i] = uint32(x)
		}
	}
	return true
}

// quickPairing reads DevicePairingRegistrationData (checked by wireValid).
func quickPairing(b []byte, d *pairingData) bool {
	var f [9][]byte // fields 1 to 8
	if !fieldsOnce(b, protowire.BytesType, f[:]) {
		return false
	}
	for i, dst := range [...]*[]byte{1: &d.eRegid, 2: &d.eKeytype, 3: &d.eIdent, 4: &d.eSkeyID, 5: &d.eSkeyVal, 6: &d.eSkeySig, 8: &d.deviceProps} {
		if dst != nil && f[i] != nil {
			*dst, _ = protowire.ConsumeBytes(f[i])
		}
	}
	return true
}

// fieldsOnce finds, in one pass over the well-formed message b, the value
// bytes (as on the wire) of each field numbered 1 to len(f)-1 with wire
// type typ, into f[number]; false if one appears more than once.
func fieldsOnce(b []byte, typ protowire.Type, f [][]byte) bool {
	for len(b) > 0 {
		num, t, n := protowire.ConsumeTag(b)
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, t, b)
		if t == typ && num > 0 && int(num) < len(f) {
			if f[num] != nil {
				return false
			}
			f[num] = b[:n:n]
		}
		b = b[n:]
	}
	return true
}

// maxQuickDepth bounds wireValid's recursion; deeper messages are left to
// proto.Unmarshal (and its own limit).
const maxQuickDepth = 16

// wireSchema is what wireValid needs of a message type, by field number
// (looked up once: a descriptor lookup per field was most of its time).
type wireSchema struct {
	fields []wireField // by number; beyond: a field wireValid only skips
}

// wireField says how wireValid treats a field sent length-delimited.
type wireField struct {
	how  uint8 // wireSkip, wireMessage, wirePacked, wireDecline
	kind protoreflect.Kind
	sub  *wireSchema // wireMessage
}

const (
	wireSkip    = iota // unknown, bytes or string: its length is all
	wireMessage        // a message: its contents are checked
	wirePacked         // a repeated scalar: packed contents are checked
	wireDecline        // a map or group: left to proto.Unmarshal
)

// schemaOf builds md's schema; seen shares those of types met before
// (recursive messages).
func schemaOf(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*wireSchema) *wireSchema {
	if ws := seen[md.FullName()]; ws != nil {
		return ws
	}
	ws := &wireSchema{}
	seen[md.FullName()] = ws
	fields := md.Fields()
	maxNum := 0
	for i := range fields.Len() {
		maxNum = max(maxNum, int(fields.Get(i).Number()))
	}
	ws.fields = make([]wireField, maxNum+1)
	for i := range fields.Len() {
		fd := fields.Get(i)
		f := &ws.fields[fd.Number()]
		f.kind = fd.Kind()
		switch {
		case fd.IsMap(), fd.Kind() == protoreflect.GroupKind:
			f.how = wireDecline
		case fd.Kind() == protoreflect.MessageKind:
			f.how = wireMessage
			f.sub = schemaOf(fd.Message(), seen)
		case fd.IsList() && fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.BytesKind:
			f.how = wirePacked
		}
	}
	return ws
}

var clientPayloadSchema = schemaOf(clientPayloadDesc, map[protoreflect.FullName]*wireSchema{})

// wireValid reports whether proto.Unmarshal would accept b as a message
// of ws's type, as far as this reader knows how to tell: false also for
// what it does not check itself (groups, maps, deep nesting).
func wireValid(b []byte, ws *wireSchema, depth int) bool {
	if depth > maxQuickDepth {
		return false
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return false
		}
		b = b[n:]
		if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
			return false
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		if typ == protowire.BytesType && int(num) < len(ws.fields) {
			if f := &ws.fields[num]; f.how != wireSkip {
				v, _ := protowire.ConsumeBytes(b[:n])
				switch f.how {
				case wireDecline:
					return false
				case wireMessage:
					if !wireValid(v, f.sub, depth+1) {
						return false
					}
				case wirePacked:
					if !packedValid(v, f.kind) {
						return false
					}
				}
			}
		}
		b = b[n:]
	}
	return true
}

// packedValid checks a packed repeated field's contents.
func packedValid(b []byte, k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return len(b)%4 == 0
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return len(b)%8 == 0
	}
	for len(b) > 0 {
		_, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return true
}
