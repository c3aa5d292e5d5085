package watest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/walinkdev/walink/jid"
)

// maxBody bounds control API request bodies.
const maxBody = 64 << 10

// Handler returns the server's HTTP handler: the WebSocket endpoint at
// /ws/chat and the control API:
//
//	POST   /phones/{phone}/scan                 {"qr": "…"}   → {"device": "<jid>"}
//	POST   /phones/{phone}/link-code            {"code": "…"} → {"device": "<jid>"}
//	POST   /phones/{phone}/refresh-code         {"force_manual": bool}
//	GET    /phones/{phone}/devices              → {"devices": [{"jid", "lid", "platform", "linked_at"}]}
//	DELETE /phones/{phone}/devices/{device}     → unlinks (a connected companion is told)
//	POST   /phones/{phone}/devices/{device}/kick {"kind": "515"|"401"|"replaced"}
//	POST   /phones/{phone}/passkey/assert       {"options": {…}} → {"assertion": {…}}
//	GET    /phones/{phone}/passkey              → {"credential_id", "public_key", "sign_count"}
//	POST   /phones/{phone}/passkey/confirm      {"code": "XXXX-XXXX"} → {"device": "<jid>"}
//	GET    /events[?follow=1][&since=SEQ]       → the node log as JSON lines
//	GET    /config, PUT /config                 → the Scenario as JSON
//	GET    /sw.js                               → service-worker script with client_revision (version.go)
//	POST   /phones/{phone}/devices/{device}/client-expiration {"t": unix seconds}
//	POST   /server/rotate-key                   → {"static": "<hex public key>"}
//
// Each event line is {"seq", "time" (RFC 3339), "conn", "dir" ("in", "out"
// or "info"), "tag", "xml" (the redacted node), "note"}. Errors are 4xx
// (5xx only for timeouts and shutdown) with {"error": "…"}: 400 malformed
// input, 404 unknown ref/device/phone request, 409 rescan needed or busy,
// 410 expired ref, retired QR or companion gone, 422 wrong code or refused
// signature (or passkey step refused), 409 also a wrong passkey code, 504 a
// passkey step past its deadline.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/chat", s.serveWS)
	s.phoneRoutes(mux)
	s.passkeyRoutes(mux)
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("GET /config", s.handleGetConfig)
	mux.HandleFunc("PUT /config", s.handlePutConfig)
	s.versionRoutes(mux) // /sw.js, client expiration, key rotation: version.go
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errors.New("watest: no such endpoint"))
	})
	// Every request is a goroutine the server owns: Close cancels it and
	// waits for it.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.track() {
			writeError(w, http.StatusServiceUnavailable, ErrClosed)
			return
		}
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) phoneFromPath(w http.ResponseWriter, r *http.Request) (*Phone, bool) {
	num := r.PathValue("phone")
	if !validNumber(num) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("watest: phone %q: want 7-15 digits without a leading 0", num))
		return nil, false
	}
	return s.Phone(num), true
}

// bodyMode says how a phone endpoint reads its JSON body.
type bodyMode int

const (
	noBody       bodyMode = iota // not read
	jsonBody                     // a JSON object, required
	optionalBody                 // a JSON object, or nothing at all
)

// statusError gives an endpoint's error its own status instead of
// statusFor's.
type statusError struct {
	status int
	err    error
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

// phoneEndpoint is the shape of the phone endpoints: the phone of the path
// ({device} too when device), the body into a B, then do, whose value is
// the 200 answer and whose error gets statusFor's status (or a
// statusError's) with {"error"}.
func phoneEndpoint[B any](s *Server, device bool, mode bodyMode, do func(ctx context.Context, p *Phone, dev uint16, body B) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.phoneFromPath(w, r)
		if !ok {
			return
		}
		var dev uint16
		if device {
			if dev, ok = deviceFromPath(w, r); !ok {
				return
			}
		}
		var body B
		if (mode == jsonBody || mode == optionalBody && r.ContentLength != 0) && !readJSON(w, r, &body) {
			return
		}
		v, err := do(r.Context(), p, dev, body)
		if err != nil {
			status := statusFor(err)
			var se statusError
			if errors.As(err, &se) {
				status = se.status
			}
			writeError(w, status, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// none is an endpoint without a body.
type none struct{}

// linked is the answer of the endpoints that end when linking ends.
func linked(dev jid.JID, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]string{"device": dev.String()}, nil
}

// phoneRoutes adds the endpoints of a phone and its devices.
func (s *Server) phoneRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /phones/{phone}/scan", phoneEndpoint(s, false, jsonBody, func(ctx context.Context, p *Phone, _ uint16, b struct {
		QR string `json:"qr"`
	}) (any, error) {
		return linked(p.ScanQR(ctx, b.QR))
	}))
	mux.HandleFunc("POST /phones/{phone}/link-code", phoneEndpoint(s, false, jsonBody, func(ctx context.Context, p *Phone, _ uint16, b struct {
		Code string `json:"code"`
	}) (any, error) {
		return linked(p.EnterCode(ctx, b.Code))
	}))
	mux.HandleFunc("POST /phones/{phone}/refresh-code", phoneEndpoint(s, false, optionalBody, func(ctx context.Context, p *Phone, _ uint16, b struct {
		ForceManual bool `json:"force_manual"`
	}) (any, error) {
		return map[string]any{}, p.RefreshCode(ctx, b.ForceManual)
	}))
	mux.HandleFunc("GET /phones/{phone}/devices", phoneEndpoint(s, false, noBody, func(_ context.Context, p *Phone, _ uint16, _ none) (any, error) {
		out := []deviceJSON{}
		for _, d := range p.Devices() {
			out = append(out, deviceJSON{JID: d.JID.String(), LID: d.LID.String(), Platform: d.Platform, LinkedAt: d.LinkedAt.UTC().Format(time.RFC3339)})
		}
		return map[string]any{"devices": out}, nil
	}))
	mux.HandleFunc("DELETE /phones/{phone}/devices/{device}", phoneEndpoint(s, true, noBody, func(ctx context.Context, p *Phone, dev uint16, _ none) (any, error) {
		return map[string]string{"unlinked": jid.NewAD(p.number, dev, jid.DefaultUserServer).String()}, p.Unlink(ctx, dev)
	}))
	mux.HandleFunc("POST /phones/{phone}/devices/{device}/kick", phoneEndpoint(s, true, jsonBody, func(ctx context.Context, p *Phone, dev uint16, b struct {
		Kind string `json:"kind"`
	}) (any, error) {
		return map[string]any{}, s.Kick(ctx, jid.NewAD(p.number, dev, jid.DefaultUserServer), b.Kind)
	}))
}

// statusFor maps the phone's errors onto HTTP statuses.
func statusFor(err error) int {
	if st, ok := passkeyStatus(err); ok {
		return st
	}
	switch {
	case errors.Is(err, ErrMalformedQR), errors.Is(err, ErrBadScenario), errors.Is(err, ErrQRMismatch):
		return http.StatusBadRequest
	case errors.Is(err, ErrWrongCode), errors.Is(err, ErrSignatureRefused), errors.Is(err, ErrPairRejected):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnknownRef), errors.Is(err, ErrNoPendingCode), errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrNotConnected):
		return http.StatusNotFound
	case errors.Is(err, ErrExpiredRef), errors.Is(err, ErrStaleQR), errors.Is(err, ErrDisconnected):
		return http.StatusGone
	case errors.Is(err, ErrRescan), errors.Is(err, ErrBusy), errors.Is(err, ErrTooManyDevices):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrClosed), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

type deviceJSON struct {
	JID      string `json:"jid"`
	LID      string `json:"lid"`
	Platform string `json:"platform"`
	LinkedAt string `json:"linked_at"`
}

func deviceFromPath(w http.ResponseWriter, r *http.Request) (uint16, bool) {
	n, err := strconv.ParseUint(r.PathValue("device"), 10, 16)
	if err != nil || n == 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("watest: device %q: want a companion device number", r.PathValue("device")))
		return 0, false
	}
	return uint16(n), true
}

// handleEvents writes the node log as JSON lines; with follow=1 it keeps
// streaming new events until the client goes away or the server closes.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	var after int64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("watest: since %q: %w", v, err))
			return
		}
		after = n
	}
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for {
		evs, changed := s.events.since(after)
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return
			}
			after = e.Seq
		}
		if !follow {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		}
	}
}

func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Scenario())
}

// handlePutConfig merges the body into the current scenario, so a script
// may send only the knobs it changes.
func (s *Server) handlePutConfig(w http.ResponseWriter, r *http.Request) {
	sc := s.Scenario()
	if !readJSON(w, r, &sc) {
		return
	}
	if err := s.UpdateScenario(sc); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("watest: read body: %w", err))
		return false
	}
	if len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, errors.New("watest: body too large"))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("watest: bad json body: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
