package watest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/walinkdev/walink/binxml"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/keys"
)

// DefaultWebRevision is the client_revision /sw.js serves by default: the
// revision whatsapp-rust pins (PROTOCOL.md §0), also walink's built-in one.
const DefaultWebRevision = 1045368834

// versionRoutes adds the endpoints of this file to the control mux.
func (s *Server) versionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sw.js", s.serveServiceWorker)
	mux.HandleFunc("POST /phones/{phone}/devices/{device}/client-expiration", phoneEndpoint(s, true, jsonBody, s.clientExpiration))
	mux.HandleFunc("POST /server/rotate-key", s.handleRotateKey)
}

// serveServiceWorker answers GET /sw.js the way web.whatsapp.com does for
// what clients read from it (CHANGES-2026 §8): a script whose embedded
// site data, JSON inside a JSON.parse string, carries client_revision.
// Request headers are not checked: nothing says WhatsApp refuses a fetch
// without a browser User-Agent (clients send one anyway).
func (s *Server) serveServiceWorker(w http.ResponseWriter, r *http.Request) {
	rev := s.Scenario().WebRevision
	if rev == 0 {
		http.NotFound(w, r)
		return
	}
	n := strconv.FormatUint(uint64(rev), 10)
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprintf(w, `/*FB_PKG_DELIM*/
"use strict";
self.__swData=JSON.parse(/*BTDS*/"{\"dynamic_data\":{\"SiteData\":{\"server_revision\":%s,\"client_revision\":%s},\"LocaleData\":{\"locale\":\"en_US\"}}}");
self.addEventListener("fetch",function(e){});
`, n, n)
}

// VersionURL returns the URL of the service-worker script,
// "http://127.0.0.1:PORT/sw.js": what a client's version fetch is pointed
// at instead of https://web.whatsapp.com/sw.js.
func (s *Server) VersionURL() string { return s.controlURL + "/sw.js" }

// SetMinClientVersion raises (or lowers, or with "" clears) the oldest
// client version the server accepts, at once. As on WhatsApp, devices
// already connected keep their connection; each is refused with
// <failure reason="405"/> at its next login. Format "2.3000.N".
func (s *Server) SetMinClientVersion(v string) error {
	sc := s.Scenario()
	sc.MinClientVersion = v
	return s.UpdateScenario(sc)
}

// SetWebRevision changes the client_revision /sw.js serves (0: 404).
func (s *Server) SetWebRevision(rev uint32) error {
	sc := s.Scenario()
	sc.WebRevision = rev
	return s.UpdateScenario(sc)
}

// clientExpiration is <ib><client_expiration t="UNIX SECONDS"/></ib>, the
// notice of a deadline for the client version in use (CHANGES-2026 §8).
func clientExpiration(at time.Time) binxml.Node {
	return binxml.Node{Tag: "ib", Children: []binxml.Node{{Tag: "client_expiration", Attrs: []binxml.Attr{binxml.A("t", strconv.FormatInt(at.Unix(), 10))}}}}
}

// SendClientExpiration tells a connected device that its client version
// expires at at.
func (s *Server) SendClientExpiration(ctx context.Context, device jid.JID, at time.Time) error {
	s.mu.Lock()
	sess := s.online[device]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, device)
	}
	s.info(sess.id, "client_expiration "+at.UTC().Format(time.RFC3339)+" to "+device.String())
	return sess.send(ctx, clientExpiration(at))
}

// RotateKey replaces the server's static key (and the chain certifying
// it, under the same root and intermediate), as WhatsApp rotates its
// keys. Handshakes after the call use the new key: a client resuming with
// IK to the old one is answered with XXfallback. Connections already open
// are not touched. It returns the new public key.
func (s *Server) RotateKey() (keys.PublicKey, error) {
	kp, err := keys.NewKeyPair(s.rand)
	if err != nil {
		return keys.PublicKey{}, fmt.Errorf("watest: rotate key: %w", err)
	}
	s.mu.Lock()
	old, oldChains := s.static, [3][]byte{s.chain, s.badChain, s.leafChain}
	s.static = kp
	if err := s.makeChains(); err != nil {
		s.static = old
		s.chain, s.badChain, s.leafChain = oldChains[0], oldChains[1], oldChains[2]
		s.mu.Unlock()
		return keys.PublicKey{}, err
	}
	s.mu.Unlock()
	s.save()
	s.info(0, "server static key rotated")
	return kp.Public, nil
}

// StaticKey returns the server's current static public key (the leaf key
// of its certificate chain).
func (s *Server) StaticKey() keys.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.static.Public
}

// clientExpiration is POST …/client-expiration {"t": unix seconds}.
func (s *Server) clientExpiration(ctx context.Context, p *Phone, dev uint16, b struct {
	T int64 `json:"t"`
}) (any, error) {
	if b.T <= 0 {
		return nil, statusError{http.StatusBadRequest, fmt.Errorf("watest: client-expiration: t must be unix seconds")}
	}
	return map[string]any{}, s.SendClientExpiration(ctx, jid.NewAD(p.number, dev, jid.DefaultUserServer), time.Unix(b.T, 0))
}

func (s *Server) handleRotateKey(w http.ResponseWriter, r *http.Request) {
	pub, err := s.RotateKey()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"static": pub.String()})
}
