package main

import (
	"context"
	"errors"

	"github.com/walinkdev/walink/watest"
)

func cmdSim(ctx context.Context, e env, args []string) error {
	def := watest.DefaultScenario()
	sc := def
	fset := newFlagSet(e, "sim", "[--listen ADDR] [--state DIR] [scenario flags]")
	listen := fset.String("listen", "127.0.0.1:0", "listen `address` for the WebSocket and the control API")
	state := fset.String("state", "", "keep accounts and linked devices in this `dir` across restarts (default: memory only)")
	fset.BoolVar(&sc.QRRefresh, "qr-refresh", def.QRRefresh, "answer a first QR scan with companion_reg_refresh, as WhatsApp does since 2026-07")
	fset.StringVar(&sc.MinClientVersion, "min-client-version", def.MinClientVersion, "refuse older clients with failure 405 (`2.3000.N`)")
	fset.IntVar(&sc.RefCount, "ref-count", def.RefCount, "refs per pair-device")
	fset.Float64Var(&sc.RefTTLFirst, "ref-ttl-first", def.RefTTLFirst, "validity of the first ref in `seconds`")
	fset.Float64Var(&sc.RefTTLNext, "ref-ttl-next", def.RefTTLNext, "validity of each later ref in `seconds`")
	fset.IntVar(&sc.PairCodeRateLimit, "pair-code-rate-limit", def.PairCodeRateLimit, "pair-code requests per phone number per hour (0 = unlimited)")
	fset.IntVar(&sc.FirstStanzaDelayMS, "first-stanza-delay-ms", def.FirstStanzaDelayMS, "pause before the first stanza after the handshake, in ms")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	err := watest.RunSim(ctx, e.stdout, watest.Config{Addr: *listen, StateDir: *state, Scenario: &sc})
	if errors.Is(err, context.Canceled) {
		return nil // SIGINT/SIGTERM: clean shutdown
	}
	return err
}
