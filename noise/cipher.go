package noise

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Overhead is the number of bytes Seal adds to a plaintext (the GCM tag).
const Overhead = 16

// Cipher is the transport cipher pair made by a finished handshake.
//
// Each frame body is AES-256-GCM(key, nonce = 00×8 || BE32(counter),
// ad = empty, plaintext) with the 16-byte tag appended; each direction has
// its own key and a counter starting at 0.
//
// Seal and Open may run concurrently with each other, but Seal must not
// run concurrently with Seal, nor Open with Open. A failed Open breaks the
// Cipher for good: every later call returns ErrCipherBroken, because a
// forged or lost frame means the two sides can no longer be trusted to be in
// step.
//
// Each direction's AES-GCM state (the expanded key schedule and GHASH
// table, about 0.75 KiB) is built by its first Seal or Open, not by the
// handshake: a connection that parks after the server's first stanza
// never needed the server's receiving state before the park released it,
// and building it cost two allocations and a key expansion per
// connection. Release drops both states of a Cipher that will be idle for
// a while; the next Seal or Open rebuilds its direction's state from the
// key, which the Cipher keeps. Apart from those builds, Seal and Open
// allocate nothing of their own.
type Cipher struct {
	send, recv direction
	broken     atomic.Bool
}

type direction struct {
	aead  cipher.AEAD // nil until the first use and after Release, until the next
	n     uint64
	nonce [12]byte // kept here so passing it to the AEAD does not allocate
	key   [keyLen]byte
}

func newDirection(key []byte) (direction, error) {
	if len(key) != keyLen {
		return direction{}, fmt.Errorf("noise: cipher key must be %d bytes, got %d", keyLen, len(key))
	}
	var d direction
	copy(d.key[:], key)
	return d, nil
}

// next returns the nonce for the next message, building the AEAD state on
// first use or after Release.
func (d *direction) next() ([]byte, error) {
	if d.n > maxNonce {
		return nil, ErrNonceExhausted
	}
	if d.aead == nil {
		a, err := newGCM(d.key[:])
		if err != nil {
			return nil, err
		}
		d.aead = a
	}
	binary.BigEndian.PutUint32(d.nonce[8:], uint32(d.n))
	d.n++
	return d.nonce[:], nil
}

// NewCipher returns a transport cipher that seals with sendKey and opens
// with recvKey (32 bytes each). Handshakes make Ciphers; this is for tests
// and tools that hold raw keys.
func NewCipher(sendKey, recvKey []byte) (*Cipher, error) {
	s, err := newDirection(sendKey)
	if err != nil {
		return nil, err
	}
	r, err := newDirection(recvKey)
	if err != nil {
		return nil, err
	}
	return &Cipher{send: s, recv: r}, nil
}

// Release drops both directions' AES-GCM state, keeping the keys and
// counters (see Cipher). It must not run concurrently with Seal or Open.
func (c *Cipher) Release() {
	c.send.aead = nil
	c.recv.aead = nil
}

// MoveTo moves the Cipher's state into dst, which must not be in use,
// and leaves c empty (every later call on c fails): for a caller that
// keeps the Cipher inside a larger struct of its own rather than as a
// separate allocation. It must not run concurrently with any other call.
func (c *Cipher) MoveTo(dst *Cipher) {
	dst.send, dst.recv = c.send, c.recv
	dst.broken.Store(c.broken.Load())
	*c = Cipher{}
	c.broken.Store(true)
}

// Released reports whether neither direction holds its AES-GCM state
// (neither Seal nor Open since Release or since the Cipher was made). Like
// Release, it must not run concurrently with Seal or Open.
func (c *Cipher) Released() bool { return c.send.aead == nil && c.recv.aead == nil }

// Seal appends the frame body for plaintext to dst and returns the result.
// It allocates only if dst lacks room for len(plaintext)+Overhead bytes, or
// to build the state (first Seal, or the first after Release).
func (c *Cipher) Seal(dst, plaintext []byte) ([]byte, error) {
	if c.broken.Load() {
		return nil, ErrCipherBroken
	}
	nonce, err := c.send.next()
	if err != nil {
		return nil, err
	}
	return c.send.aead.Seal(dst, nonce, plaintext, nil), nil
}

// Open appends the plaintext of the frame body ct to dst and returns the
// result. Any failure is terminal (see Cipher).
func (c *Cipher) Open(dst, ct []byte) ([]byte, error) {
	if c.broken.Load() {
		return nil, ErrCipherBroken
	}
	nonce, err := c.recv.next()
	if err != nil {
		return nil, err
	}
	out, err := c.recv.aead.Open(dst, nonce, ct, nil)
	if err != nil {
		c.broken.Store(true)
		return nil, fmt.Errorf("%w (frame %d)", ErrDecrypt, c.recv.n-1)
	}
	return out, nil
}

// Counters returns how many frames have been sealed and opened. It must
// not run concurrently with Seal or Open.
func (c *Cipher) Counters() (sent, received uint64) { return c.send.n, c.recv.n }
