//go:build amd64 && !purego

package keys

import (
	circl "github.com/cloudflare/circl/dh/x25519"
	"golang.org/x/sys/cpu"
)

// fastLadder: CIRCL's Montgomery ladder keeps the field in four 64-bit
// limbs and does each ladder step in one assembly routine with MULX/ADCX/ADOX;
// on CPUs that have BMI2 and ADX it is ~1.4× faster than the 51-bit ladder
// (BenchmarkECDH, bench/NOTES.md), and a handshake is mostly X25519. Without
// those instructions CIRCL falls back to plain MULQ code that is no faster
// than ours, so the portable ladder stays.
var fastLadder = cpu.X86.HasBMI2 && cpu.X86.HasADX

func x25519(out, scalar, point *[Size]byte) {
	if fastLadder {
		// Shared masks the top bit of u and reduces a non-canonical u
		// modulo p (RFC 7748 §5), as x25519Ladder does; its low-order
		// verdict is not used: ECDH checks the output for zero itself, the
		// same on every path. Clamping an already clamped scalar is a no-op.
		circl.Shared((*circl.Key)(out), (*circl.Key)(scalar), (*circl.Key)(point))
		return
	}
	x25519Ladder(out, scalar, point)
}
