package noise

// Test hooks into the symmetric state.

func (in *Initiator) SetTrace(f func(step string, h, ck []byte)) { in.ss.trace = f }
func (r *Responder) SetTrace(f func(step string, h, ck []byte))  { r.ss.trace = f }

// SetCounters jumps the nonce counters, to test exhaustion.
func (c *Cipher) SetCounters(send, recv uint64) { c.send.n, c.recv.n = send, recv }

func (in *Initiator) SetSplitTrace(f func(k1, k2 []byte)) { in.ss.splitTrace = f }
func (r *Responder) SetSplitTrace(f func(k1, k2 []byte))  { r.ss.splitTrace = f }

// BufCap exposes the decoder's buffer capacity to the retention test.
func (d *Decoder) BufCap() int { return cap(d.buf) }
