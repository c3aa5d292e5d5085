package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/walinkdev/walink"
)

func cmdStatus(ctx context.Context, e env, args []string) error {
	fset := newFlagSet(e, "status", "[--store PATH] [--json]")
	storePath := fset.String("store", "", "session store `path` (default $WALINK_STORE or the user config dir)")
	asJSON := fset.Bool("json", false, `print one JSON object: {"linked":true,"id":…,"lid":…,"platform":…,"linked_at":…} or {"linked":false} (with "unconfirmed":true after an interrupted pairing)`)
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	path := *storePath
	if path == "" {
		path = defaultStorePath(e)
	}
	out := map[string]any{"linked": false}
	// Looking must not create a store where there is none.
	if _, err := os.Stat(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store %s: %w", path, err)
	} else if err == nil {
		st, err := openStore(ctx, path)
		if err != nil {
			return err
		}
		defer closeQuietly(st)
		dev, err := pickDevice(ctx, st)
		if err != nil {
			return err
		}
		// An unconfirmed session (pairing interrupted before the server
		// confirmed it) is not shown as linked: the next link or logout
		// learns its fate.
		if dev.Paired() && dev.Unconfirmed {
			out["unconfirmed"] = true
		}
		if dev.Linked() {
			out = map[string]any{
				"linked":    true,
				"id":        dev.ID.String(),
				"lid":       dev.LID.String(),
				"platform":  dev.Platform,
				"linked_at": dev.LinkedAt.UTC().Format(time.RFC3339),
			}
			if dev.ServerURL != "" {
				out["server"] = dev.ServerURL
			}
			// What the next connect of walink link / serve would use: the
			// built-in version or the newer one fetched after a 405, and
			// Noise IK when a verified server chain is stored and valid.
			now := time.Now()
			v, src, _ := walink.VersionStatus(dev, "", now)
			out["version"], out["version_source"] = v, src
			if !dev.WebVersionFetchedAt.IsZero() {
				out["version_fetched_at"] = dev.WebVersionFetchedAt.UTC().Format(time.RFC3339)
			}
			ik, why := walink.ResumeStatus(dev, now, false)
			out["resume_ik"], out["resume"] = ik, why
		}
	}
	if *asJSON {
		b, _ := json.Marshal(out)
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	if out["linked"] == false {
		if out["unconfirmed"] == true {
			fmt.Fprintf(e.stdout, "not linked (store %s): a pairing was interrupted before the server confirmed it; run walink link\n", path)
			return nil
		}
		fmt.Fprintf(e.stdout, "not linked (store %s)\n", path)
		return nil
	}
	fmt.Fprintf(e.stdout, "linked\n  id:        %s\n  lid:       %s\n  platform:  %s\n  linked at: %s\n", out["id"], out["lid"], out["platform"], out["linked_at"])
	if s, ok := out["server"]; ok {
		fmt.Fprintf(e.stdout, "  server:    %s\n", s)
	}
	fmt.Fprintf(e.stdout, "  version:   %s (%s)\n", out["version"], out["version_source"])
	resume := "no, full XX handshake"
	if out["resume_ik"] == true {
		resume = "yes, Noise IK"
	}
	fmt.Fprintf(e.stdout, "  resume:    %s (%s)\n", resume, out["resume"])
	return nil
}
