package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/walinkdev/walink"
)

func cmdLogout(ctx context.Context, e env, args []string) error {
	fset := newFlagSet(e, "logout", "[--store PATH] [--server URL --server-root HEX]")
	storePath := fset.String("store", "", "session store `path` (default $WALINK_STORE or the user config dir)")
	server := fset.String("server", "", "server WebSocket `URL` (default: the one the device was linked against)")
	serverRoot := fset.String("server-root", "", "root public key of --server's certificates, 64 `hex` characters")
	timeout := fset.Duration("timeout", 30*time.Second, "give up after this long")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if (*server == "") != (*serverRoot == "") {
		return fail(exitUsage, "logout: --server and --server-root go together")
	}
	root, err := parseRoot(*serverRoot)
	if err != nil {
		return err
	}
	path := *storePath
	if path == "" {
		path = defaultStorePath(e)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fail(exitLoggedOut, "nothing is linked (no store at %s)", path)
	}
	st, err := openStore(ctx, path)
	if err != nil {
		return err
	}
	defer closeQuietly(st)
	dev, err := pickDevice(ctx, st)
	if err != nil {
		return err
	}
	if !dev.Paired() {
		return fail(exitLoggedOut, "nothing is linked (store %s)", path)
	}
	if *server == "" && dev.ServerURL != "" {
		*server, root = dev.ServerURL, dev.ServerRoot
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := walink.Config{ServerURL: *server, ServerRoot: root}
	cfg.Reconnect.Disabled = true
	cli := walink.NewClient(st, cfg)
	defer closeQuietly(cli)
	events := make(chan walink.Event, 16)
	cli.AddEventHandler(func(ev walink.Event) {
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	})
	if err := cli.Connect(ctx); err != nil {
		return connectError(err)
	}
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fail(exitFailure, "logout: no answer from the server within %s", *timeout)
			}
			return ctx.Err()
		case ev := <-events:
			switch ev := ev.(type) {
			case walink.Connected:
				if err := cli.Logout(ctx); err != nil {
					return fail(exitFailure, "logout: %v", err)
				}
				fmt.Fprintf(e.stdout, "logged out %s; the store is cleared\n", dev.ID)
				return nil
			case walink.PairingQRCode:
				// The client asks to pair anew only when the server refused
				// a session it never confirmed; the client deleted it.
				return fail(exitLoggedOut, "the server never confirmed this device's link; the local session is cleared")
			case walink.LoggedOut:
				return fail(exitLoggedOut, "the server no longer knows this device (%v); the local session is cleared", ev.Reason)
			case walink.ClientOutdated:
				return fail(exitRefused, "WhatsApp refused this client version as outdated")
			case walink.TemporaryBan:
				return fail(exitRefused, "temporarily banned (code %d, expires in %s)", ev.Code, ev.Expire)
			case walink.ConnectFailure:
				return fail(exitFailure, "connection refused: %v %s", ev.Reason, ev.Message)
			case walink.Disconnected:
				return fail(exitFailure, "disconnected before the server confirmed the logout")
			}
		}
	}
}
