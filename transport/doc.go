// Package transport carries WhatsApp's Noise-encrypted frame stream over a
// WebSocket: it dials and accepts the socket, runs the handshake of package
// noise over it with deadlines taken from a context, and then moves
// encrypted frames.
//
// # Layers
//
//	Dial                 WebSocket client as a net.Conn byte stream: upgrade through net/http
//	                     (proxy, TLS, ctx), then this package's RFC 6455 client framing
//	Accept               server side: upgrade through net/http's Hijack, then this package's
//	                     RFC 6455 server framing (no buffer held while idle)
//	Handshake            client side: header + msg1 in one write, verify the server chain, msg3
//	                     (or an IK resume: msg1 carries the payload, no msg3 if accepted)
//	ServerHandshake      server side: intro (ED pre-intro, WA 06 02/03), msg1 → msg2, msg3
//	                     (IK accepted: msg1 → msg2; refused: XXfallback msg2, msg3)
//	Conn                 ReadFrame / NextFrame / WriteFrame of frame plaintexts; WriteNode and
//	                     WriteFrameFunc build the plaintext in the frame buffer
//
// Handshake and ServerHandshake take any net.Conn, so tests can use
// net.Pipe.
//
// # Reading without copies
//
// A Conn reads from the socket straight into its frame buffer and can
// decrypt there: NextFrame returns the plaintext in place, valid until the
// next read, for a reader that decodes each frame before the next one
// (walink's read loop does, and copies out the Content it keeps);
// ReadFrame returns a copy the caller owns. Verified server certificate
// chains are cached process-wide (ClientConfig.Chains), so reconnects and
// the many clients of one process verify a chain's signatures once.
//
// # Sending without copies, idling without buffers
//
// WriteNode encodes a stanza straight into a send buffer behind room for
// the WebSocket and frame headers, seals it there in place and, over Dial's
// WebSocket, masks it in place: one buffer, one write, no allocation in
// steady state (WriteFrameFunc does the same for any append-style
// encoder). Send buffers are borrowed from a process-wide pool for the
// write only. An idle client Conn over Dial's WebSocket waits for the next
// frame header in a 10-byte array and holds no read or write buffer: the
// frame buffer is made when a frame arrives, sized from its header.
// CloseOnDone ties a Conn to a context without a per-write watch. Accept's
// server side idles the same way (no bufio kept from the hijack, a 14-byte
// header array), and AwaitReadable lets a server park an idle
// connection's goroutine in a call chain that fits the smallest stack.
// On Linux a server can do without that goroutine: Conn.Park hands an idle
// connection to a Poller (one epoll instance and one goroutine for all of
// them), which starts the caller's resume function on a fresh goroutine
// when the client sends something or the connection closes; while parked
// the Conn also drops its AES-GCM state (noise.Cipher.Release).
//
// # Resume
//
// A registered client may set ClientConfig.Resume to the chain it cached
// from its last connection (Conn.ServerCert). Handshake then resumes with
// Noise IK, sending the payload in message 1; the server accepts (two
// messages) or answers with XXfallback (three), and Conn.Mode says which.
// ServerHandshake serves both per ServerConfig.IK and reports the mode in
// Hello.Mode. If the server drops a resume, or its answer does not verify,
// the error wraps ErrResumeFailed: forget the cache and connect again with
// a full handshake (CHANGES-2026 §7). Package walink's Client does not
// resume yet: it always runs the full XX handshake.
//
// # Cancellation
//
// A context passed to Handshake, ServerHandshake or WriteFrame is mapped
// onto the connection's deadlines: when it ends, the blocked IO returns.
// The handshake additionally has a 20 s default timeout (the value every
// known client uses for the server's reply). ReadFrame has no context;
// Close unblocks it.
//
// # Errors
//
// Handshake failures are *HandshakeError, which names the step and wraps
// the cause: a *noise.CertError for a server chain that does not lead to
// the configured root, ErrHandshakeTimeout, the context's error, or a noise
// sentinel. After a failed Open the connection is closed: crypto failures
// are terminal. The first write error sticks.
package transport
