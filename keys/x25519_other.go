//go:build !amd64 || purego

package keys

const fastLadder = false

func x25519(out, scalar, point *[Size]byte) { x25519Ladder(out, scalar, point) }
