package main

import (
	"strings"
	"testing"
)

const handshakeBench = `BenchmarkX25519/op=dh/impl=ecdh-2 	 6237	 40000 ns/op	 40000 cpu-ns/op
BenchmarkX25519/op=keygen/impl=ecdh-2 	 6028	 30000 ns/op	 30000 cpu-ns/op
BenchmarkX25519/op=dh/impl=walink-keys-2 	 6567	 32000 ns/op
BenchmarkX25519/op=keygen/impl=walink-keys-2 	 15553	 16000 ns/op
BenchmarkX25519/op=xeddsa-verify/impl=walink-2 	 4428	 50000 ns/op
BenchmarkHandshake/where=memory/impl=walink-2 	 662	 368000 ns/op
BenchmarkHandshake/where=memory-parallel/impl=walink-2 	 1251	 187000 ns/op
BenchmarkHandshake/where=watest/impl=walink-2 	 6745	 500000 ns/op	 600000 cpu-ns/op
`

const handshakeChildBench = `BenchmarkHandshake/where=watest-child/impl=walink-2 	 4710	 577000 ns/op	 351000 cpu-ns/op	 300000 sim-cpu-ns/op
`

func renderHandshake(t *testing.T, in string) (string, []string) {
	t.Helper()
	b, err := parseBench(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NPROC", "2")
	var w strings.Builder
	targets := handshakeSection(&w, b)
	return w.String(), targets
}

// With BenchmarkHandshake/where=watest-child in the run, §5 prices the
// sim's CPU alone against the responder's X25519 work (1 keygen + 3 DH),
// and leaves the combined rows and the target as they were.
func TestHandshakeSectionSimAlone(t *testing.T) {
	old, oldTargets := renderHandshake(t, handshakeBench)
	got, targets := renderHandshake(t, handshakeBench+handshakeChildBench)
	for _, want := range []string{
		"| sim in its own process: CPU per handshake (server side only; getrusage of the child over the timed section) | 300.00 µs |",
		"| load generator's CPU per handshake in that run (client process; wall 577.00 µs per handshake) | 351.00 µs |",
		// 30 + 3 × 40 µs
		"| server X25519 work per handshake (1 keygen + 3 DH, crypto/ecdh units) | 150.00 µs |",
		// (16 + 3 × 32) ÷ 300
		"| X25519 share of the sim's CPU time (the server's X25519 work as walink does it ÷ sim CPU per handshake) | 37 % |",
		"| **sim ÷ its X25519 limit, by CPU** (server X25519 work ÷ sim CPU per handshake) | **50 %** |",
		// 2e9 ÷ 300 µs, 2e9 ÷ 150 µs
		"| 6667/s vs 13333/s |",
		"load generator's CPU (dial, socket setup",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	// Every row of the run without the child is still there, unchanged.
	for _, line := range strings.Split(old, "\n") {
		if !strings.Contains(got, line) {
			t.Errorf("row changed or dropped: %q", line)
		}
	}
	if strings.Contains(old, "sim") {
		t.Errorf("sim-alone text without the child's run:\n%s", old)
	}
	if strings.Join(targets, "\n") != strings.Join(oldTargets, "\n") {
		t.Errorf("targets changed: %v, was %v", targets, oldTargets)
	}
}

// With several passes, §5 adds each pass's by-CPU ratio against its own
// X25519 reference, and the target line says the range.
func TestHandshakeSectionPerPass(t *testing.T) {
	second := strings.NewReplacer("40000 ns/op", "60000 ns/op", "600000 cpu-ns/op", "500000 cpu-ns/op").Replace(handshakeBench)
	got, targets := renderHandshake(t, handshakeBench+second)
	// Pass 1: (2 × 30 + 6 × 40) ÷ 600 = 50 %; pass 2: (60 + 360) ÷ 500 = 84 %.
	if want := "| by CPU time, each pass against its own X25519 reference (2 passes; crypto/ecdh DH 40.00 µs … 60.00 µs across them) | 50 … 84 % |"; !strings.Contains(got, want) {
		t.Errorf("missing %q in:\n%s", want, got)
	}
	if len(targets) != 1 || !strings.Contains(targets[0], "; per pass 50 … 84 %") {
		t.Errorf("target line %q lacks the per-pass range", targets)
	}
	// One pass: no range row.
	if one, _ := renderHandshake(t, handshakeBench); strings.Contains(one, "each pass against") {
		t.Errorf("a one-pass run got a range row:\n%s", one)
	}
}
