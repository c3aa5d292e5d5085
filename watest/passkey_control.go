package watest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
)

// passkeyRoutes adds the passkey endpoints of the control API.
func (s *Server) passkeyRoutes(mux *http.ServeMux) {
	// {"options": <request options JSON>} → {"assertion": <assertion
	// JSON>}, made by the phone's credential; unusable options are 400.
	mux.HandleFunc("POST /phones/{phone}/passkey/assert", phoneEndpoint(s, false, jsonBody, func(_ context.Context, p *Phone, _ uint16, b struct {
		Options json.RawMessage `json:"options"`
	}) (any, error) {
		a, err := p.Assert(b.Options)
		if err != nil {
			return nil, statusError{http.StatusBadRequest, err}
		}
		return map[string]json.RawMessage{"assertion": a}, nil
	}))
	mux.HandleFunc("GET /phones/{phone}/passkey", phoneEndpoint(s, false, noBody, func(_ context.Context, p *Phone, _ uint16, _ none) (any, error) {
		info := p.Passkey()
		enc := base64.RawURLEncoding
		return map[string]any{
			"credential_id": enc.EncodeToString(info.CredentialID),
			"public_key":    enc.EncodeToString(info.PublicKey),
			"sign_count":    info.SignCount,
		}, nil
	}))
	// The code typed on the phone: 200 {"device"} once linked, 409 for a
	// wrong code.
	mux.HandleFunc("POST /phones/{phone}/passkey/confirm", phoneEndpoint(s, false, jsonBody, func(ctx context.Context, p *Phone, _ uint16, b struct {
		Code string `json:"code"`
	}) (any, error) {
		return linked(p.ConfirmPasskey(ctx, b.Code))
	}))
}
