package watest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
)

// passkeyRoutes adds the passkey endpoints of the control API.
func (s *Server) passkeyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /phones/{phone}/passkey/assert", s.handlePasskeyAssert)
	mux.HandleFunc("GET /phones/{phone}/passkey", s.handlePasskeyInfo)
	mux.HandleFunc("POST /phones/{phone}/passkey/confirm", s.handlePasskeyConfirm)
}

// handlePasskeyAssert: {"options": <request options JSON>} →
// {"assertion": <assertion JSON>}, made by the phone's credential.
func (s *Server) handlePasskeyAssert(w http.ResponseWriter, r *http.Request) {
	p, ok := s.phoneFromPath(w, r)
	if !ok {
		return
	}
	var body struct {
		Options json.RawMessage `json:"options"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	a, err := p.Assert(body.Options)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{"assertion": a})
}

func (s *Server) handlePasskeyInfo(w http.ResponseWriter, r *http.Request) {
	p, ok := s.phoneFromPath(w, r)
	if !ok {
		return
	}
	info := p.Passkey()
	enc := base64.RawURLEncoding
	writeJSON(w, http.StatusOK, map[string]any{
		"credential_id": enc.EncodeToString(info.CredentialID),
		"public_key":    enc.EncodeToString(info.PublicKey),
		"sign_count":    info.SignCount,
	})
}

// handlePasskeyConfirm types the code on the phone: 200 {"device"} once
// linked, 409 for a wrong code.
func (s *Server) handlePasskeyConfirm(w http.ResponseWriter, r *http.Request) {
	p, ok := s.phoneFromPath(w, r)
	if !ok {
		return
	}
	var body struct {
		Code string `json:"code"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	dev, err := p.ConfirmPasskey(r.Context(), body.Code)
	writeLinkResult(w, dev, err)
}
