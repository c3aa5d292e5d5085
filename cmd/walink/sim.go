package main

import (
	"context"
	"errors"

	"github.com/walinkdev/walink/watest"
)

func cmdSim(ctx context.Context, e env, args []string) error {
	sc := watest.DefaultScenario()
	fset := newFlagSet(e, "sim", "[--listen ADDR] [--state DIR] [scenario flags]")
	listen := fset.String("listen", "127.0.0.1:0", "listen `address` for the WebSocket and the control API")
	state := fset.String("state", "", "keep accounts and linked devices in this `dir` across restarts (default: memory only)")
	// One flag per scenario knob, named like the /config JSON keys.
	sc.RegisterFlags(fset)
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if err := sc.Validate(); err != nil {
		return fail(exitUsage, "sim: %v", err)
	}
	err := watest.RunSim(ctx, e.stdout, watest.Config{Addr: *listen, StateDir: *state, Scenario: &sc})
	if errors.Is(err, context.Canceled) {
		return nil // SIGINT/SIGTERM: clean shutdown
	}
	return err
}
