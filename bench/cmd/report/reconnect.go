package main

import (
	"fmt"
	"math"
	"strings"
)

// reconnectSection: BenchmarkReconnect, a linked device reconnecting to
// watest (in a child process) with XX and with a Noise IK resume.
func reconnectSection(w *strings.Builder, b benchSet) {
	const pfx = "BenchmarkReconnect/mode="
	xx := b.get(pfx+"xx/impl=walink", "ns/op")
	if math.IsNaN(xx) {
		return
	}
	w.WriteString("## 6. Reconnect: Noise IK resume vs XX\n\n")
	w.WriteString("A linked device reconnects to the local WhatsApp (its own process, so the CPU column is the client's alone, from getrusage): dial, WebSocket upgrade, handshake with the login payload, `<success>` read back, close. IK resumes to the chain stored from the first connect (CHANGES-2026 §7). The rtt rows add an emulated 20 ms round trip to each handshake exchange (loopback answers in microseconds, so there the saved round trip cannot show); the coldcache row is XX verifying the chain's two signatures, as the first connect of a new process does. On a loaded machine the loopback rows vary by tens of per cent between runs (see the benchstat appendix); the in-memory table below is the steadier CPU comparison. Ratio = IK ÷ XX.\n\n")
	w.WriteString("| network | measurement | XX | IK | IK ÷ XX |\n|---|---|---|---|---|\n")
	for _, net := range []struct{ label, suffix string }{{"loopback", ""}, {"loopback, XX verifying the chain (first connect of a process)", "-coldcache"}, {"loopback + 20 ms RTT", "-rtt20ms"}} {
		for _, m := range []struct{ label, unit string }{
			{"wall time, dial to success", "connect-ns/op"},
			{"wall time per reconnect (incl. close)", "ns/op"},
			{"client CPU per reconnect", "cpu-ns/op"},
		} {
			x := b.get(pfx+"xx"+net.suffix+"/impl=walink", m.unit)
			ikSuffix := net.suffix
			if ikSuffix == "-coldcache" {
				ikSuffix = "" // IK verifies no chain, cache or not
			}
			k := b.get(pfx+"ik"+ikSuffix+"/impl=walink", m.unit)
			if math.IsNaN(x) || math.IsNaN(k) {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", net.label, m.label, ns(x), ns(k), ratio(k/x))
		}
	}
	fmt.Fprintf(w, "\n%d runs of each.\n\n", b.runs(pfx+"xx/impl=walink"))

	const cpfx = "BenchmarkResumeClientCrypto/side="
	ik := b.get(cpfx+"client-ik/impl=walink", "ns/op")
	if math.IsNaN(ik) {
		return
	}
	w.WriteString("The client's share of one handshake in memory (noise.Initiator only, the server's steps untimed): XX does 1 key generation and 3 DHs, plus 2 XEdDSA verifications when the chain is not in the process's cache; IK does 1 key generation and 4 DHs and verifies nothing new.\n\n")
	w.WriteString("| client handshake work | ns/op | IK ÷ this |\n|---|---|---|\n")
	for _, m := range []struct{ label, name string }{
		{"XX, chain cache warm (every reconnect of a running process)", "client-xx"},
		{"XX, verifying the chain (first connect of a process)", "client-xx-verify"},
		{"IK resume", "client-ik"},
	} {
		v := b.get(cpfx+m.name+"/impl=walink", "ns/op")
		fmt.Fprintf(w, "| %s | %s | %s |\n", m.label, ns(v), ratio(ik/v))
	}
	w.WriteString("\n")
}
