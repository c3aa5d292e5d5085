// Command walink links this machine to a WhatsApp account as a companion
// device, by QR code or pair code, shows and clears the saved session, and
// runs a local WhatsApp for tests.
//
// Usage:
//
//	walink link    [--store PATH] [--phone NUMBER [--code CUSTOM] [--push]] [--server URL --server-root HEX] [--json] [--sim] [--qr-png FILE] [--qr-svg FILE]
//	walink status  [--store PATH] [--json]
//	walink logout  [--store PATH] [--server URL --server-root HEX]
//	walink qr      --png FILE | --svg FILE  (link, writing each QR as an image)
//	walink sim     [--listen ADDR] [--state DIR] [scenario flags]
//	walink serve   [--listen ADDR] [--store PATH | --postgres DSN] [--api-key-file FILE] [--sim]
//	walink sim     [--listen ADDR] [--state DIR] [--log FILE] [--log-size N] [scenario flags]
//	walink sim load --server URL --server-root HEX [--devices N] [--rate R] [--online M]
//	walink version
//
// Exit codes are the exit* constants below, printed by `walink help` and
// listed in README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes, documented in `walink help` and README.md.
const (
	exitOK          = 0 // done
	exitFailure     = 1 // unexpected failure (store, network, server error)
	exitUsage       = 2 // bad flags or arguments (incl. an invalid phone number or code)
	exitNotLinked   = 3 // linking did not complete: QR codes expired, code refused, pairing error
	exitLoggedOut   = 4 // the session is gone: logged out or unlinked, or nothing is linked
	exitRefused     = 5 // the server refused this client: outdated version, banned
	exitInterrupted = 130
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "devel"

// env lets tests replace the process environment.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader // nil: none
	getenv         func(string) string
	isTTY          bool // stdout is a terminal
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv, isTTY: isTerminal(os.Stdout)}
	os.Exit(run(ctx, e, os.Args[1:]))
}

const usageText = `walink links this machine to a WhatsApp account as a companion device.

Commands:
  link      link a device by QR code (and/or a pair code with --phone); stays until connected once
  status    show whether a device is linked
  logout    log the linked device out on the server and clear the store
  qr        like link, but writes each QR code to an image (--png FILE or --svg FILE)
  sim       run the local WhatsApp (server + virtual phones) for tests
  sim load  link N virtual companions to a running sim and keep them online
  serve     link and keep many accounts: HTTP API, web page, webhooks (--sim: a demo)
  version   print the version

Run 'walink COMMAND --help' for a command's flags.

Store: --store PATH, or $WALINK_STORE, or walink/walink.db in the user config directory.
Private keys are encrypted at rest when one of WALINK_STORE_KEY, WALINK_STORE_KEY_FILE,
WALINK_STORE_PASSPHRASE or WALINK_STORE_PASSPHRASE_FILE is set.

Exit codes:
  0  done
  1  unexpected failure (store, network, server error)
  2  bad flags or arguments (including an invalid phone number or code)
  3  linking did not complete (QR codes expired, code refused, pairing error)
  4  not linked, logged out or unlinked
  5  refused by the server (client outdated, banned)
  130 interrupted
`

func run(ctx context.Context, e env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usageText)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "link":
		err = cmdLink(ctx, e, rest, false)
	case "qr":
		err = cmdLink(ctx, e, rest, true)
	case "status":
		err = cmdStatus(ctx, e, rest)
	case "logout":
		err = cmdLogout(ctx, e, rest)
	case "sim":
		err = cmdSim(ctx, e, rest)
	case "serve":
		err = cmdServe(ctx, e, rest)
	case "version", "--version", "-version":
		fmt.Fprintf(e.stdout, "walink %s\n", version)
		return exitOK
	case "help", "--help", "-help", "-h":
		fmt.Fprint(e.stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "walink: unknown command %q (try 'walink help')\n", cmd)
		return exitUsage
	}
	return report(e, err)
}

// exitError carries an exit code and a one-line reason.
type exitError struct {
	code int
	err  error
}

func (x *exitError) Error() string { return x.err.Error() }
func (x *exitError) Unwrap() error { return x.err }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// errHelp is returned when --help was asked for: exit 0, usage already shown.
var errHelp = errors.New("help shown")

func report(e env, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var x *exitError
	code := exitFailure
	if errors.As(err, &x) {
		code = x.code
	} else if errors.Is(err, context.Canceled) {
		code = exitInterrupted
	}
	// The library's errors carry their own "walink: " prefix; one is
	// enough on the command line.
	fmt.Fprintf(e.stderr, "walink: %s\n", strings.ReplaceAll(err.Error(), "walink: ", ""))
	return code
}
