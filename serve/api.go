package serve

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/internal/qrimage"
	"github.com/walinkdev/walink/jid"
	"github.com/walinkdev/walink/store"
)

// maxBody bounds every JSON request body.
const maxBody = 64 << 10

// route is one API route; Routes lists them all, and the OpenAPI document
// is tested against this table.
type route struct {
	Method, Pattern string
	h               func(*Service, http.ResponseWriter, *http.Request)
}

var apiRoutes = []route{
	{"GET", "/v1/openapi.json", (*Service).handleOpenAPI},
	{"POST", "/v1/sessions", (*Service).handleCreate},
	{"GET", "/v1/sessions", (*Service).handleList},
	{"GET", "/v1/sessions/{id}", (*Service).handleGet},
	{"DELETE", "/v1/sessions/{id}", (*Service).handleDelete},
	{"POST", "/v1/sessions/{id}/logout", (*Service).handleLogout},
	{"POST", "/v1/sessions/{id}/start", (*Service).handleStart},
	{"POST", "/v1/sessions/{id}/stop", (*Service).handleStop},
	{"GET", "/v1/sessions/{id}/qr", (*Service).handleQR},
	{"POST", "/v1/sessions/{id}/pair-code", (*Service).handlePairCode},
	{"GET", "/v1/sessions/{id}/passkey", (*Service).handlePasskeyOptions},
	{"POST", "/v1/sessions/{id}/passkey/response", (*Service).handlePasskeyResponse},
	{"POST", "/v1/sessions/{id}/passkey/confirm", (*Service).handlePasskeyConfirm},
	{"GET", "/v1/sessions/{id}/events", (*Service).handleSessionEvents},
	{"GET", "/v1/events", (*Service).handleAllEvents},
	{"POST", "/v1/sessions/{id}/sim/scan", (*Service).handleSimScan},
	{"POST", "/v1/sessions/{id}/sim/enter-code", (*Service).handleSimEnterCode},
}

// Handler returns the service's HTTP handler: the API under /v1, the
// page at /, /healthz and /readyz (unauthenticated) and, unless
// MetricsOnOwnListener, /metrics (authenticated).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range apiRoutes {
		h := rt.h
		hf := func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }
		if ownerRoutes[rt.Method+" "+rt.Pattern] {
			hf = s.forwardable(hf)
		}
		mux.Handle(rt.Method+" "+rt.Pattern, s.authed(hf))
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		s.authed(func(w http.ResponseWriter, r *http.Request) {
			if allow := allowedMethods(r.URL.Path); len(allow) > 0 {
				w.Header().Set("Allow", strings.Join(allow, ", "))
				writeProblem(w, r, http.StatusMethodNotAllowed, "method-not-allowed", "allowed: "+strings.Join(allow, ", "))
				return
			}
			writeProblem(w, r, http.StatusNotFound, "not-found", "no such route")
		})(w, r)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	if !s.cfg.MetricsOnOwnListener {
		m := s.MetricsHandler()
		mux.Handle("GET /metrics", s.authed(m.ServeHTTP))
	}
	s.pageRoutes(mux)
	return securityHeaders(mux)
}

// allowedMethods lists the methods of the routes whose pattern matches
// path (for a 405 answer).
func allowedMethods(path string) []string {
	var out []string
	segs := strings.Split(path, "/")
	for _, rt := range apiRoutes {
		ps := strings.Split(rt.Pattern, "/")
		if len(ps) != len(segs) {
			continue
		}
		ok := true
		for i := range ps {
			if !strings.HasPrefix(ps[i], "{") && ps[i] != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, rt.Method)
		}
	}
	return out
}

// securityHeaders sets the headers every response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer Chromium sends
		// "Origin: null" on form posts, which the CSRF check must refuse.
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// authed admits a request with an API key, or with the page's cookie
// (and, for unsafe methods, its CSRF token and a same-origin Origin).
func (s *Service) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cl != nil && r.Header.Get(internalHeader) != "" {
			// Forwarded by another replica, which authenticated the
			// caller; nothing else is looked at.
			if !s.cl.verifyInternal(r, s.now()) {
				writeProblem(w, r, http.StatusUnauthorized, "unauthorized", "bad internal signature")
				return
			}
			h(w, r)
			return
		}
		r.Header.Del(forwardedBy) // only a signed request may say it was forwarded
		kind, cookie := s.auth.identify(r, s.now())
		switch kind {
		case authNone:
			w.Header().Set("WWW-Authenticate", `Bearer realm="walink"`)
			writeProblem(w, r, http.StatusUnauthorized, "unauthorized", "send an API key as Authorization: Bearer KEY, or sign in on the page")
			return
		case authCookie:
			if !safeMethod(r.Method) {
				tok := r.Header.Get(csrfHeader)
				if tok == "" || !sameOrigin(r) || !equalConst(tok, s.auth.csrfToken(cookie)) {
					writeProblem(w, r, http.StatusForbidden, "csrf", "a signed-in page must send its CSRF token")
					return
				}
			}
		}
		h(w, r)
	}
}

func equalConst(a, b string) bool {
	return len(a) == len(b) && subtleEq(a, b)
}

// sameOrigin: an Origin header, when present, names this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // SameSite=Strict already kept cross-site requests cookieless
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// SessionView is a session as the API shows it.
type SessionView struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Status      Status        `json:"status"`
	Reason      string        `json:"reason,omitempty"`
	Device      string        `json:"device,omitempty"`   // the linked device's JID
	Phone       string        `json:"phone,omitempty"`    // the linked account's number
	Platform    string        `json:"platform,omitempty"` // the phone's platform
	Running     bool          `json:"running"`            // a client is kept for it (false from the moment it is logged out or stopped)
	Webhook     *WebhookView  `json:"webhook,omitempty"`
	Transitions []Transition  `json:"transitions"`
	QR          *QRView       `json:"qr,omitempty"`
	PairCode    *PairCodeView `json:"pair_code,omitempty"`
	Passkey     *PasskeyView  `json:"passkey,omitempty"` // status passkey_confirm
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

type WebhookView struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret,omitempty"` // only in the create response
}

type QRView struct {
	QR        string    `json:"qr"`
	ExpiresAt time.Time `json:"expires_at"`
}

type PairCodeView struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Service) view(ss *session) SessionView {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	r := ss.rec
	running := ss.cli != nil && r.WantRunning
	if s.cl != nil {
		running = r.WantRunning // held here or by another replica
	}
	v := SessionView{ID: r.ID, Name: r.Name, Status: r.Status, Reason: r.Reason, Device: r.Device, Running: running,
		Transitions: append([]Transition{}, r.Transitions...), CreatedAt: r.Created, UpdatedAt: r.Updated, Platform: r.Platform}
	if d, err := jid.Parse(r.Device); err == nil && r.Device != "" {
		v.Phone = d.User
	}
	if r.Webhook.URL != "" {
		v.Webhook = &WebhookView{URL: r.Webhook.URL, Events: nonNil(r.Webhook.Events)}
	}
	if r.Status == StatusScanQR && ss.qr != "" {
		v.QR = &QRView{QR: ss.qr, ExpiresAt: ss.qrExp.UTC()}
	}
	if r.Status == StatusPairCode && ss.code != "" {
		v.PairCode = &PairCodeView{Code: ss.code, ExpiresAt: ss.codeExp.UTC()}
	}
	if r.Status == StatusPasskeyConfirm && ss.passkey != nil {
		pk := *ss.passkey
		v.Passkey = &pk
	}
	return v
}

// decodeBody reads a JSON body into v: application/json, at most maxBody
// bytes, no unknown fields, one value. An empty body is allowed when
// optional.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, r, http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("at most %d bytes", maxBody))
			return false
		}
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "reading the body failed")
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 && optional {
		return true
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || len(data) > 0 {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeProblem(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type", "send Content-Type: application/json")
			return false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "invalid JSON: "+err.Error())
		return false
	}
	if dec.More() {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "one JSON value expected")
		return false
	}
	return true
}

func (s *Service) session(w http.ResponseWriter, r *http.Request) *session {
	ss := s.get(r.PathValue("id"))
	if ss == nil && s.cl != nil {
		// Made through another replica, and its event not seen here yet.
		ss = s.loadRemote(r.Context(), r.PathValue("id"))
	}
	if ss == nil {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no session "+strconv.Quote(r.PathValue("id")))
	}
	return ss
}

type createRequest struct {
	Name    string `json:"name"`
	Webhook *struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Secret string   `json:"secret"`
	} `json:"webhook"`
	// Start, default true, starts linking at once.
	Start *bool `json:"start"`
}

func validWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("webhook.url must be an absolute http(s) URL")
	}
	return nil
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !decodeBody(w, r, &req, true) {
		return
	}
	if len(req.Name) > 100 {
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-field", "name: at most 100 characters")
		return
	}
	now := s.now()
	rec := record{ID: newID(), Name: req.Name, Status: StatusDisconnected, Created: now, Updated: now, WantRunning: false}
	if rec.Name == "" {
		rec.Name = rec.ID
	}
	var secretShown string
	if req.Webhook != nil {
		if err := validWebhookURL(req.Webhook.URL); err != nil {
			writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-field", err.Error())
			return
		}
		for _, e := range req.Webhook.Events {
			if !knownEvent(e) {
				writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-field", "webhook.events: unknown event "+strconv.Quote(e))
				return
			}
		}
		rec.Webhook = WebhookConfig{URL: req.Webhook.URL, Events: req.Webhook.Events, Secret: req.Webhook.Secret}
		if rec.Webhook.Secret == "" {
			rec.Webhook.Secret = newSecret()
			secretShown = rec.Webhook.Secret
		}
	}
	rec.Transitions = []Transition{{Status: rec.Status, At: now.UTC()}}
	ss := &session{id: rec.ID, rec: rec}
	evs := []StoredEvent{{Name: "session_created", Data: map[string]any{"name": rec.Name}}}
	s.writeMu.Lock()
	err := s.writeTx(func(ctx context.Context, tx *sql.Tx) error {
		if err := s.db.insertSession(ctx, tx, &rec); err != nil {
			return err
		}
		return s.insertEvents(ctx, tx, &rec, evs)
	})
	if err == nil {
		s.mu.Lock()
		s.sessions[rec.ID] = ss
		s.mu.Unlock()
	}
	s.writeMu.Unlock()
	if err != nil {
		s.log.Error("serve: creating a session", "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "storing the session failed")
		return
	}
	s.published(evs)
	if req.Start == nil || *req.Start {
		if err := s.startSession(ss, false); err != nil {
			writeProblem(w, r, http.StatusInternalServerError, "internal", "starting the session failed")
			return
		}
	}
	v := s.view(ss)
	if v.Webhook != nil {
		v.Webhook.Secret = secretShown
	}
	w.Header().Set("Location", "/v1/sessions/"+ss.id)
	writeJSON(w, http.StatusCreated, v)
}

func knownEvent(name string) bool {
	if name == "*" {
		return true
	}
	for _, e := range EventNames {
		if e == name {
			return true
		}
	}
	return false
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	views := make([]SessionView, 0, len(all))
	for _, ss := range all {
		views = append(views, s.view(ss))
	}
	sortViews(views)
	writeJSON(w, http.StatusOK, map[string]any{"sessions": views})
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	if ss := s.session(w, r); ss != nil {
		writeJSON(w, http.StatusOK, s.view(ss))
	}
}

func (s *Service) handleStart(w http.ResponseWriter, r *http.Request) {
	ss := s.session(w, r)
	if ss == nil {
		return
	}
	if err := s.startSession(ss, false); err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "internal", "starting the session failed")
		return
	}
	writeJSON(w, http.StatusOK, s.view(ss))
}

func (s *Service) handleStop(w http.ResponseWriter, r *http.Request) {
	ss := s.session(w, r)
	if ss == nil {
		return
	}
	if err := s.stopSession(ss, false, "stopped"); err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "internal", "stopping the session failed")
		return
	}
	writeJSON(w, http.StatusOK, s.view(ss))
}

// logout unlinks ss's device on WhatsApp, connecting it first if needed.
func (s *Service) logout(ctx context.Context, ss *session) error {
	ss.mu.Lock()
	cli, dev := ss.cli, ss.rec.Device
	ss.mu.Unlock()
	if dev == "" {
		return errNotLinked
	}
	if cli == nil {
		if err := s.startSession(ss, false); err != nil {
			return err
		}
		ss.mu.Lock()
		cli = ss.cli
		ss.mu.Unlock()
	}
	if cli == nil {
		return errNotLinked
	}
	for !cli.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: not connected", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return cli.Logout(ctx)
}

var errNotLinked = errors.New("serve: session is not linked")

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	ss := s.session(w, r)
	if ss == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	if err := s.logout(ctx, ss); err != nil {
		if errors.Is(err, errNotLinked) || errors.Is(err, walink.ErrNotLoggedIn) {
			writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "wrong-status", Detail: "the session is not linked", SessionStatus: s.view(ss).Status})
			return
		}
		writeProblem(w, r, http.StatusBadGateway, "logout-failed", err.Error())
		return
	}
	s.waitStatus(ctx, ss, StatusLoggedOut)
	writeJSON(w, http.StatusOK, s.view(ss))
}

// waitStatus waits (briefly) until the client's event made ss reach st,
// so the answer shows the state the action led to.
func (s *Service) waitStatus(ctx context.Context, ss *session, st Status) {
	for range 100 {
		ss.mu.Lock()
		cur := ss.rec.Status
		ss.mu.Unlock()
		if cur == st || ctx.Err() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request) {
	ss := s.session(w, r)
	if ss == nil {
		return
	}
	force := r.URL.Query().Get("force") == "true"
	ctx, cancel := context.WithTimeout(r.Context(), s.logoutWait)
	defer cancel()
	if err := s.logout(ctx, ss); err != nil && !errors.Is(err, errNotLinked) && !errors.Is(err, walink.ErrNotLoggedIn) {
		if !force {
			writeProblem(w, r, http.StatusBadGateway, "logout-failed", err.Error()+" (DELETE ?force=true deletes the session here without logging out)")
			return
		}
	}
	// Stopped for good first (on replicas, recorded before the lease is
	// given back: see letGo), so that a session kept by a failure below
	// does not connect again.
	if err := s.stopSession(ss, false, ""); err != nil {
		s.log.Error("serve: stopping a session to delete it", "session", ss.id, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "stopping the session failed; nothing was deleted")
		return
	}
	// The device record goes first and a failure stops here: the session
	// row stays (stopped), so the DELETE can be retried, rather than the
	// account's keys staying behind with no session to reach them by. It
	// has a deadline of its own: a logout that timed out used up ctx, and
	// a client hanging up now must not leave the deletion half done.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer dcancel()
	if err := s.deleteDevice(dctx, ss); err != nil {
		s.log.Error("serve: deleting a session's device record", "session", ss.id, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "deleting the session's device record failed; the session is kept, stopped (retry the DELETE)")
		return
	}
	if err := s.deleteSession(ss); err != nil {
		s.log.Error("serve: deleting a session", "session", ss.id, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "deleting the session failed; the session is kept, stopped (retry the DELETE)")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteDevice removes ss's device record from the store, if it is still
// there (a successful logout removed it already).
func (s *Service) deleteDevice(ctx context.Context, ss *session) error {
	ss.mu.Lock()
	dev := ss.rec.Device
	ss.mu.Unlock()
	if dev == "" {
		return nil
	}
	d, err := jid.Parse(dev)
	if err != nil {
		return fmt.Errorf("serve: stored device %q: %w", dev, err)
	}
	sd, err := s.cfg.Store.DeviceByJID(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve: reading the device record: %w", err)
	}
	if err := s.cfg.Store.DeleteDevice(ctx, sd.NoiseKey.Public); err != nil {
		return fmt.Errorf("serve: deleting the device record: %w", err)
	}
	return nil
}

func (s *Service) deleteSession(ss *session) error {
	s.writeMu.Lock()
	ss.mu.Lock()
	rec := ss.rec
	ss.gen++
	ss.mu.Unlock()
	evs := []StoredEvent{{Name: "session_deleted", Data: map[string]any{}}}
	err := s.writeTx(func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.q(`DELETE FROM serve_sessions WHERE id=?`), rec.ID); err != nil {
			return err
		}
		// The lease row goes with the session row (after it: a replica
		// making a missing lease row reads the session row FOR SHARE, so
		// it either made the row before this statement, which then sees
		// it, or finds no session and makes none).
		if lr, ok := s.cfg.Owner.(LeaseRows); ok {
			q, args := lr.ForgetSQL(rec.ID)
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("serve: deleting the lease row: %w", err)
			}
		}
		if err := s.insertEvents(ctx, tx, &rec, evs); err != nil {
			return err
		}
		// The deletion event stays as the session's last word for
		// resuming streams; older history goes.
		_, err := tx.ExecContext(ctx, s.db.q(`DELETE FROM serve_events WHERE session_id=? AND seq<?`), rec.ID, evs[0].Seq)
		return err
	})
	if err == nil {
		s.mu.Lock()
		delete(s.sessions, rec.ID)
		s.mu.Unlock()
	}
	s.writeMu.Unlock()
	if err == nil {
		s.published(evs)
	}
	return err
}

// qrFormat picks png, svg or json from ?format= or Accept.
func qrFormat(r *http.Request) string {
	if f := r.URL.Query().Get("format"); f != "" {
		return f
	}
	acc := r.Header.Get("Accept")
	if acc == "" {
		return "json"
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(acc, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			q, _ = strconv.ParseFloat(v, 64)
		}
		var f string
		switch mt {
		case "image/png":
			f = "png"
		case "image/svg+xml":
			f = "svg"
		case "application/json", "*/*", "application/*":
			f = "json"
		case "image/*":
			f = "png"
		}
		if f != "" && q > bestQ {
			best, bestQ = f, q
		}
	}
	return best
}

func (s *Service) handleQR(w http.ResponseWriter, r *http.Request) {
	ss := s.session(w, r)
	if ss == nil {
		return
	}
	f := qrFormat(r)
	if f != "png" && f != "svg" && f != "json" {
		writeProblem(w, r, http.StatusNotAcceptable, "not-acceptable", "QR formats: image/png, image/svg+xml, application/json (or ?format=png|svg|json)")
		return
	}
	ss.mu.Lock()
	st, qr, exp := ss.rec.Status, ss.qr, ss.qrExp
	ss.mu.Unlock()
	if st != StatusScanQR || qr == "" || !s.now().Before(exp) {
		writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "not-scanning", SessionStatus: st,
			Detail: "the session is " + string(st) + "; a QR code exists only while it is scan_qr"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Expires", exp.UTC().Format(http.TimeFormat))
	switch f {
	case "json":
		writeJSON(w, http.StatusOK, QRView{QR: qr, ExpiresAt: exp.UTC()})
	case "png", "svg":
		code, err := qrimage.Encode(qr)
		if err != nil {
			writeProblem(w, r, http.StatusInternalServerError, "internal", "encoding the QR failed")
			return
		}
		var buf bytes.Buffer
		if f == "png" {
			err = code.PNG(&buf, 6)
			w.Header().Set("Content-Type", "image/png")
		} else {
			err = code.SVG(&buf)
			w.Header().Set("Content-Type", "image/svg+xml")
		}
		if err != nil {
			writeProblem(w, r, http.StatusInternalServerError, "internal", "encoding the QR failed")
			return
		}
		w.Write(buf.Bytes())
	}
}

type pairCodeRequest struct {
	Phone string `json:"phone"`
	Code  string `json:"code"`
	Push  bool   `json:"push"`
}

func (s *Service) handlePairCode(w http.ResponseWriter, r *http.Request) {
	ss := s.session(w, r)
	if ss == nil {
		return
	}
	var req pairCodeRequest
	if !decodeBody(w, r, &req, false) {
		return
	}
	ss.mu.Lock()
	cli, st, dev := ss.cli, ss.rec.Status, ss.rec.Device
	ss.mu.Unlock()
	switch {
	case st == StatusConnected || (dev != "" && st != StatusLoggedOut):
		writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "already-linked", SessionStatus: st})
		return
	case cli == nil || (st != StatusScanQR && st != StatusPairCode && st != StatusStarting):
		writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "wrong-status", SessionStatus: st,
			Detail: "start the session first: a pair code is asked for while it is linking (scan_qr)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	pc, err := cli.RequestPairCode(ctx, walink.PairCodeOptions{PhoneNumber: req.Phone, CustomCode: req.Code, ShowPushNotification: req.Push})
	if err != nil {
		s.pairCodeProblem(w, r, ss, err)
		return
	}
	ss.mu.Lock()
	if ss.method == "" || ss.method == "qr" {
		ss.method = "code"
	}
	ss.mu.Unlock()
	s.met.pairStarted.WithLabelValues("code").Inc()
	// The expiry is the library's (Config.Client.Now's clock, the
	// code's lifetime as the session armed it), not a guess here.
	writeJSON(w, http.StatusOK, PairCodeView{Code: pc.Code, ExpiresAt: pc.Expires.UTC()})
}

func (s *Service) pairCodeProblem(w http.ResponseWriter, r *http.Request, ss *session, err error) {
	var rej *walink.PairCodeRejectedError
	switch {
	case errors.Is(err, walink.ErrPhoneNumberRequired), errors.Is(err, walink.ErrPhoneNumberTooShort), errors.Is(err, walink.ErrPhoneNumberNotInternational):
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-phone-number", err.Error())
	case errors.Is(err, walink.ErrInvalidCustomCode):
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-custom-code", err.Error())
	case errors.Is(err, walink.ErrCodeAlreadyOutstanding):
		writeProblem(w, r, http.StatusConflict, "code-outstanding", "a pair code is already waiting to be typed; it expires on its own")
	case errors.Is(err, walink.ErrAlreadyPaired):
		writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "already-linked", SessionStatus: s.view(ss).Status})
	case errors.As(err, &rej) && rej.Throttled:
		after := int(rej.Backoff / time.Second)
		if after <= 0 {
			after = 60
		}
		s.met.pairFailed.WithLabelValues("code", "rate_limited").Inc()
		writeProblemP(w, r, Problem{Status: http.StatusTooManyRequests, Type: "rate-limited", RetryAfter: after, Detail: err.Error()})
	case errors.As(err, &rej) && rej.Code == 452:
		s.met.pairFailed.WithLabelValues("code", "feature_not_available").Inc()
		writeProblem(w, r, http.StatusUnprocessableEntity, "feature-not-available", "WhatsApp does not offer pair codes for this number; scan the QR code instead")
	case errors.As(err, &rej):
		s.met.pairFailed.WithLabelValues("code", "rejected").Inc()
		writeProblem(w, r, http.StatusBadGateway, "pair-code-rejected", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeProblem(w, r, http.StatusGatewayTimeout, "unavailable", "WhatsApp did not answer in time")
	default:
		writeProblem(w, r, http.StatusBadGateway, "pair-code-rejected", err.Error())
	}
}

func (s *Service) passkeyClient(w http.ResponseWriter, r *http.Request) (*walink.Client, bool) {
	ss := s.session(w, r)
	if ss == nil {
		return nil, false
	}
	if s.cfg.Passkey == nil {
		writeProblem(w, r, http.StatusNotImplemented, "passkey-not-available", "this build of walink serve does not drive the passkey step yet")
		return nil, false
	}
	ss.mu.Lock()
	cli, st := ss.cli, ss.rec.Status
	ss.mu.Unlock()
	if cli == nil || (st != StatusPasskeyRequired && st != StatusPasskeyConfirm) {
		writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "wrong-status", SessionStatus: st, Detail: "no passkey step is waiting"})
		return nil, false
	}
	return cli, true
}

func (s *Service) handlePasskeyOptions(w http.ResponseWriter, r *http.Request) {
	cli, ok := s.passkeyClient(w, r)
	if !ok {
		return
	}
	opts, err := s.cfg.Passkey.Options(r.Context(), cli)
	if err != nil {
		writeProblem(w, r, http.StatusBadGateway, "wrong-status", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"public_key": opts})
}

func (s *Service) handlePasskeyResponse(w http.ResponseWriter, r *http.Request) {
	cli, ok := s.passkeyClient(w, r)
	if !ok {
		return
	}
	var body json.RawMessage
	if !decodeBody(w, r, &body, false) {
		return
	}
	if err := s.cfg.Passkey.Respond(r.Context(), cli, body); err != nil {
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-field", err.Error())
		return
	}
	s.handleGet(w, r)
}

func (s *Service) handlePasskeyConfirm(w http.ResponseWriter, r *http.Request) {
	cli, ok := s.passkeyClient(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Passkey.Confirm(r.Context(), cli); err != nil {
		writeProblem(w, r, http.StatusBadGateway, "wrong-status", err.Error())
		return
	}
	s.handleGet(w, r)
}

type simRequest struct {
	Phone string `json:"phone"`
}

func (s *Service) simSession(w http.ResponseWriter, r *http.Request) (*session, string, bool) {
	if s.cfg.Sim == nil {
		writeProblem(w, r, http.StatusNotFound, "sim-not-enabled", "")
		return nil, "", false
	}
	ss := s.session(w, r)
	if ss == nil {
		return nil, "", false
	}
	var req simRequest
	if !decodeBody(w, r, &req, false) {
		return nil, "", false
	}
	phone, err := walink.NormalizePhoneNumber(req.Phone)
	if err != nil {
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-phone-number", err.Error())
		return nil, "", false
	}
	return ss, phone, true
}

func (s *Service) handleSimScan(w http.ResponseWriter, r *http.Request) {
	ss, phone, ok := s.simSession(w, r)
	if !ok {
		return
	}
	ss.mu.Lock()
	st, qr := ss.rec.Status, ss.qr
	ss.mu.Unlock()
	if st != StatusScanQR || qr == "" {
		writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "not-scanning", SessionStatus: st})
		return
	}
	if err := s.cfg.Sim.ScanQR(r.Context(), phone, qr); err != nil {
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-field", "the virtual phone refused the QR: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.view(ss))
}

func (s *Service) handleSimEnterCode(w http.ResponseWriter, r *http.Request) {
	ss, phone, ok := s.simSession(w, r)
	if !ok {
		return
	}
	ss.mu.Lock()
	st, code := ss.rec.Status, ss.code
	ss.mu.Unlock()
	if st != StatusPairCode || code == "" {
		writeProblemP(w, r, Problem{Status: http.StatusConflict, Type: "wrong-status", SessionStatus: st, Detail: "no pair code is waiting"})
		return
	}
	if err := s.cfg.Sim.EnterCode(r.Context(), phone, code); err != nil {
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid-field", "the virtual phone refused the code: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.view(ss))
}
