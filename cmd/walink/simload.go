package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/walinkdev/walink/watest/simload"
)

// cmdSimLoad is `walink sim load`: link N light companions to a running
// local WhatsApp and keep them online (package watest/simload).
func cmdSimLoad(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "sim load", "--server URL --server-root HEX [--control URL] [--devices N] [--rate R] [--online M] [--duration D] [--json]")
	var cfg simload.Config
	server := fs.String("server", "", "WebSocket `url` of the server (ws_url of `walink sim`'s first line)")
	root := fs.String("server-root", "", "root public key of the server's certificates, 64 `hex` characters (root_public_key)")
	control := fs.String("control", "", "control API base `url` (default: http://HOST of --server)")
	fs.IntVar(&cfg.Devices, "devices", 1, "companions to link, one phone number each")
	fs.IntVar(&cfg.Online, "online", 0, "how many stay connected after linking (0 = all); the others stay linked, offline")
	fs.Float64Var(&cfg.Rate, "rate", 0, "links started per second (0 = as fast as --parallel allows)")
	fs.IntVar(&cfg.Parallel, "parallel", 32, "links in flight at once")
	fs.Uint64Var(&cfg.FirstNumber, "first-number", 15550000000, "phone number of the first companion; the next ones count up")
	fs.IntVar(&cfg.PreKeys, "prekeys", 812, "pre-keys each companion uploads after its first login (negative = none)")
	fs.DurationVar(&cfg.Keepalive, "keepalive", 30*time.Second, "w:p ping interval per online companion (negative = none)")
	fs.DurationVar(&cfg.Timeout, "link-timeout", 60*time.Second, "time limit of one link")
	duration := fs.Duration("duration", 0, "stay online this long after linking, then exit (0 = until interrupted)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" {
		return fail(exitUsage, "sim load: --server is required (see 'walink sim load --help')")
	}
	var err error
	if cfg.ServerRoot, err = parseRoot(*root); err != nil {
		return err
	}
	if cfg.ServerRoot.IsZero() {
		return fail(exitUsage, "sim load: --server-root is required")
	}
	cfg.ServerURL, cfg.ControlURL = *server, *control
	if cfg.ControlURL == "" {
		u, err := url.Parse(*server)
		if err != nil || u.Host == "" {
			return fail(exitUsage, "sim load: --server %q is not a URL", *server)
		}
		cfg.ControlURL = "http://" + u.Host
	}
	if cfg.Devices < 1 {
		return fail(exitUsage, "sim load: --devices must be at least 1")
	}
	online := cfg.Online
	if online <= 0 || online > cfg.Devices {
		online = cfg.Devices
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && uint64(online)+64 > lim.Cur {
		fmt.Fprintf(e.stderr, "walink: sim load: %d online companions need as many open files; the limit is %d (ulimit -n), so some will fail\n", online, lim.Cur)
	}
	cfg.Progress = func(p simload.Progress) {
		fmt.Fprintf(e.stderr, "\r%6.0fs  started %d  linked %d  failed %d  online %d ", p.Elapsed.Seconds(), p.Started, p.Linked, p.Failed, p.Online)
	}
	f, rep, err := simload.Link(ctx, cfg)
	fmt.Fprintln(e.stderr)
	if err != nil {
		return err
	}
	defer f.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if *asJSON {
		b, _ := json.Marshal(struct {
			simload.Report
			P50MS float64 `json:"p50_ms"`
			P90MS float64 `json:"p90_ms"`
			P99MS float64 `json:"p99_ms"`
		}{rep, msf(rep.P50), msf(rep.P90), msf(rep.P99)})
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		fmt.Fprintf(e.stdout, "linked %d of %d in %s (%.0f/s), %d failed, %d online\n", rep.Linked, rep.Devices, rep.Duration.Round(time.Millisecond),
			float64(rep.Linked)/rep.Duration.Seconds(), rep.Failed, rep.Online)
		fmt.Fprintf(e.stdout, "link latency p50 %s  p90 %s  p99 %s  max %s\n", rep.P50.Round(time.Millisecond), rep.P90.Round(time.Millisecond), rep.P99.Round(time.Millisecond), rep.Max.Round(time.Millisecond))
		for k, n := range rep.Errors {
			fmt.Fprintf(e.stdout, "failure ×%d: %s\n", n, k)
		}
	}
	if f, ok := e.stdout.(*os.File); ok {
		f.Sync()
	}
	if *duration > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(*duration):
		}
	} else {
		<-ctx.Done()
	}
	if n := rep.Online - f.Online(); n > 0 {
		fmt.Fprintf(e.stderr, "walink: sim load: %d companions were disconnected by the server\n", n)
	}
	if rep.Failed > 0 {
		return fail(exitFailure, "sim load: %d of %d links failed", rep.Failed, rep.Devices)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil // interrupted: the normal way to stop
	}
	return nil
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
