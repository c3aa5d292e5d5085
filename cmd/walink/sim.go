package main

import (
	"context"
	"errors"
	"os"

	"github.com/walinkdev/walink/watest"
)

func cmdSim(ctx context.Context, e env, args []string) error {
	if len(args) > 0 && args[0] == "load" {
		return cmdSimLoad(ctx, e, args[1:])
	}
	sc := watest.DefaultScenario()
	fset := newFlagSet(e, "sim", "[--listen ADDR] [--state DIR] [--log FILE] [--log-size N] [scenario flags] | sim load --help")
	listen := fset.String("listen", "127.0.0.1:0", "listen `address` for the WebSocket and the control API")
	state := fset.String("state", "", "keep accounts and linked devices in this `dir` across restarts (default: memory only)")
	logFile := fset.String("log", "", "append every node-log event to this `file` as JSON lines (the in-memory log keeps only the last --log-size)")
	logSize := fset.Int("log-size", watest.DefaultEventLogSize, "events the in-memory node log (GET /events) keeps")
	// One flag per scenario knob, named like the /config JSON keys.
	sc.RegisterFlags(fset)
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if err := sc.Validate(); err != nil {
		return fail(exitUsage, "sim: %v", err)
	}
	if *logSize < 1 {
		return fail(exitUsage, "sim: --log-size must be at least 1")
	}
	cfg := watest.Config{Addr: *listen, StateDir: *state, Scenario: &sc, EventLogSize: *logSize}
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fail(exitFailure, "sim: --log: %v", err)
		}
		defer f.Close()
		cfg.EventFile = f
	}
	err := watest.RunSim(ctx, e.stdout, cfg)
	if errors.Is(err, context.Canceled) {
		return nil // SIGINT/SIGTERM: clean shutdown
	}
	return err
}
