package watest

import (
	"bufio"
	"bytes"
	"net/http"

	"github.com/walinkdev/walink/transport"
)

// quickRequestLine is the request line every client's upgrade request
// starts with; any other goes to http.ReadRequest.
const quickRequestLine = "GET /ws/chat HTTP/1.1"

// quickHeaders are the header fields quickRequest keeps, by lower-case
// name, with their canonical keys: those transport.AcceptConn reads
// (checkUpgradeRequest, upgrade: Upgrade, Sec-WebSocket-Version,
// Sec-WebSocket-Key, Origin, and Host for r.Host) and the rest of the
// handshake's fields, so the request carries what the upgrade is about.
// A header AcceptConn starts to read must be added here.
var quickHeaders = [...]struct{ lower, key string }{
	{"host", "Host"},
	{"upgrade", "Upgrade"},
	{"connection", "Connection"},
	{"origin", "Origin"},
	{"sec-websocket-key", "Sec-Websocket-Key"},
	{"sec-websocket-version", "Sec-Websocket-Version"},
	{"sec-websocket-extensions", "Sec-Websocket-Extensions"},
	{"sec-websocket-protocol", "Sec-Websocket-Protocol"},
}

// quickRefuse are header fields that make http.ReadRequest look at a body
// (and refuse bad values): a request with one goes to it.
var quickRefuse = [...]string{"content-length", "transfer-encoding"}

// quickRequest reads the head of a plain WebSocket upgrade request from br
// with fewer allocations than http.ReadRequest (4 against 17,
// BenchmarkUpgradeRequest): the request line quickRequestLine, then header
// lines "Name: value" ending in CRLF, names of token characters (any
// case), values of visible ASCII, spaces and tabs, each kept field at most
// once. It returns nil, having consumed nothing, for anything else (folded
// lines, bare LF, other methods, targets or versions, duplicate kept
// fields, bodies, non-ASCII values, a head longer than br's buffer, a read
// error), which the caller then reads with http.ReadRequest: so a request
// is accepted, refused and read exactly as before (FuzzQuickRequest). It
// returns as soon as a line rules the quick path out, so a client is
// answered as promptly as http.ReadRequest would answer it. Of the header
// fields only quickHeaders are kept, and r.URL is not set.
func quickRequest(br *bufio.Reader) *http.Request {
	q, ok := quickScan(br)
	if !ok {
		return nil
	}
	return q.request()
}

// quickHead is a request head quickScan read: the head and where its kept
// fields' values are in it.
type quickHead struct {
	head  string
	spans [len(quickHeaders)][2]int32 // value of each kept field in head; end 0 = absent
	found int                         // kept fields present
}

// quickScan is quickRequest without building the request: the server's
// path takes the fields transport.AcceptUpgrade reads from the head
// (upgrade), with one allocation (the head) against quickRequest's four.
func quickScan(br *bufio.Reader) (quickHead, bool) {
	var (
		scanned int // bytes of complete lines checked
		q       quickHead
	)
	spans := &q.spans
	for {
		b, _ := br.Peek(br.Buffered())
		for {
			i := bytes.IndexByte(b[scanned:], '\n')
			if i < 0 {
				break
			}
			end := scanned + i // the '\n'
			if end == 0 || b[end-1] != '\r' {
				return quickHead{}, false // bare LF
			}
			line := b[scanned : end-1]
			switch {
			case scanned == 0:
				if string(line) != quickRequestLine {
					return quickHead{}, false
				}
			case len(line) == 0:
				// End of the head.
				q.head = string(b[:end+1])
				br.Discard(end + 1)
				return q, true
			default:
				k, vs, ve, ok := quickHeaderLine(line)
				if !ok {
					return quickHead{}, false
				}
				if k >= 0 {
					if spans[k][1] != 0 {
						return quickHead{}, false // repeated: Header.Values and ReadRequest's checks
					}
					spans[k] = [2]int32{int32(scanned + vs), int32(scanned + ve)}
					q.found++
				}
			}
			scanned = end + 1
		}
		if br.Buffered() >= br.Size() {
			return quickHead{}, false
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return quickHead{}, false
		}
	}
}

// quickHeaderLine checks one header line: the index of its kept field (-1:
// not kept) and its value's bounds in line, or !ok for a line
// http.ReadRequest is left to read.
func quickHeaderLine(line []byte) (k, vs, ve int, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return 0, 0, 0, false
	}
	name := line[:colon]
	for _, c := range name {
		if !tokenByte(c) {
			return 0, 0, 0, false
		}
	}
	vs, ve = colon+1, len(line)
	for _, c := range line[vs:] {
		if (c < 0x20 || c > 0x7e) && c != '\t' {
			return 0, 0, 0, false
		}
	}
	for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	for _, r := range quickRefuse {
		if asciiEqualFold(name, r) {
			return 0, 0, 0, false
		}
	}
	for i, h := range quickHeaders {
		if asciiEqualFold(name, h.lower) {
			return i, vs, ve, true
		}
	}
	return -1, vs, ve, true
}

// Indexes of quickHeaders.
const (
	qHost = iota
	qUpgrade
	qConnection
	qOrigin
	qKey
	qVersion
)

// field returns the value of quickHeaders[k], "" when absent.
func (q *quickHead) field(k int) string {
	sp := q.spans[k]
	return q.head[sp[0]:sp[1]]
}

// upgrade returns what transport.AcceptUpgrade reads of the request: the
// values http.ReadRequest's request would give AcceptConn.
func (q *quickHead) upgrade() transport.UpgradeRequest {
	return transport.UpgradeRequest{
		Method: http.MethodGet, Host: q.field(qHost),
		Upgrade: q.field(qUpgrade), Version: q.field(qVersion), Key: q.field(qKey), Origin: q.field(qOrigin),
	}
}

// request makes the request from the head and the kept fields' values
// (slices of head: one string for all of them).
func (q *quickHead) request() *http.Request {
	head, spans, found := q.head, &q.spans, q.found
	var host string
	if sp := spans[0]; sp[1] != 0 { // quickHeaders[0]: Host
		// r.Host only: http.ReadRequest leaves it out of the header map.
		host = head[sp[0]:sp[1]]
		found--
	}
	h := make(http.Header, found)
	// The request and the header's value slices in one allocation.
	a := new(struct {
		r    http.Request
		vals [len(quickHeaders)]string
	})
	vals := a.vals[:]
	for i, sp := range spans[1:] {
		if sp[1] == 0 {
			continue
		}
		vals[0] = head[sp[0]:sp[1]]
		h[quickHeaders[i+1].key] = vals[:1:1]
		vals = vals[1:]
	}
	r := &a.r
	*r = http.Request{
		Method:     http.MethodGet,
		RequestURI: "/ws/chat",
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
	}
	r.Host = host
	return r
}

// tokenByte reports whether c may appear in a header field name (RFC 9110
// tchar), as net/textproto checks names.
func tokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// asciiEqualFold compares b with lower, which is lower-case ASCII.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
