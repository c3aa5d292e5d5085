package transport

// CipherReleased reports whether c's cipher holds no AES-GCM state. Call
// it only while c's reader is blocked waiting (or stopped): it takes
// writeMu, not readMu.
func (c *Conn) CipherReleased() bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.cipher.Released()
}
