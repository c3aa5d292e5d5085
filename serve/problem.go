package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem detail. Type is stable per kind of error
// ("urn:walink:problem:<name>"); clients switch on it, not on Title.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// SessionStatus is the session's status when it is why the request
	// was refused (e.g. a QR asked for while connected).
	SessionStatus Status `json:"session_status,omitempty"`
	// RetryAfter, in seconds, when rate-limited (also the Retry-After header).
	RetryAfter int `json:"retry_after,omitempty"`
}

// Problem types, one per documented error.
var problemTitles = map[string]string{
	"unauthorized":           "Authentication required",
	"csrf":                   "Missing or wrong CSRF token",
	"not-found":              "Not found",
	"method-not-allowed":     "Method not allowed",
	"bad-request":            "Malformed request",
	"body-too-large":         "Request body too large",
	"unsupported-media-type": "Request body must be application/json",
	"invalid-field":          "A field is invalid",
	"not-acceptable":         "No acceptable representation",
	"not-scanning":           "The session is not waiting for a QR scan",
	"wrong-status":           "The session's status does not allow this",
	"invalid-phone-number":   "Invalid phone number",
	"invalid-custom-code":    "Invalid custom pair code",
	"code-outstanding":       "A pair code is already outstanding",
	"rate-limited":           "Rate limited by WhatsApp",
	"feature-not-available":  "Pair code linking is not available for this number",
	"pair-code-rejected":     "WhatsApp refused the pair code request",
	"already-linked":         "The session is already linked",
	"logout-failed":          "Logging out on WhatsApp failed",
	"passkey-not-available":  "The passkey step is not available in this build",
	"sim-not-enabled":        "The virtual phone runs only with walink serve --sim",
	"unavailable":            "Service unavailable",
	"internal":               "Internal error",
}

func problemType(name string) string { return "urn:walink:problem:" + name }

func writeProblem(w http.ResponseWriter, r *http.Request, status int, name, detail string) {
	writeProblemP(w, r, Problem{Status: status, Type: name, Detail: detail})
}

func writeProblemP(w http.ResponseWriter, r *http.Request, p Problem) {
	name := p.Type
	p.Type = problemType(name)
	p.Title = problemTitles[name]
	if p.Title == "" {
		panic("serve: undocumented problem type " + name)
	}
	if r != nil {
		p.Instance = r.URL.Path
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
