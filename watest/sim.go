package watest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// SimInfo is the first line `walink sim` prints: where to connect, what to
// trust, where to steer.
type SimInfo struct {
	WSURL         string `json:"ws_url"`
	RootPublicKey string `json:"root_public_key"` // 64 hex chars
	ControlURL    string `json:"control_url"`
	// VersionURL is the service-worker script with the current
	// client_revision (Config.VersionURL / --version-url of a client).
	VersionURL string `json:"version_url"`
}

// Info returns the server's SimInfo.
func (s *Server) Info() SimInfo {
	return SimInfo{WSURL: s.URL(), RootPublicKey: s.RootKey().String(), ControlURL: s.ControlURL(), VersionURL: s.VersionURL()}
}

// RunSim starts a server, prints its SimInfo as one JSON line to out, and
// serves until ctx ends; then it shuts down cleanly. It is the body of
// `walink sim`.
func RunSim(ctx context.Context, out io.Writer, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	b, err := json.Marshal(s.Info())
	if err != nil {
		s.Close()
		return fmt.Errorf("watest: encode info: %w", err)
	}
	if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
		s.Close()
		return fmt.Errorf("watest: print info: %w", err)
	}
	<-ctx.Done()
	return s.Close()
}
