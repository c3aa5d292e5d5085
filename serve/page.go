package serve

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed assets openapi.json
var assetFS embed.FS

var pageTmpl = template.Must(template.ParseFS(assetFS, "assets/*.html"))

// contentSecurityPolicy: everything from this origin, nothing inline, no
// framing; images may be blobs (the QR is fetched with credentials).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const loginCookie = "walink_login"

func (s *Service) pageRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(assetFS, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.HandleFunc("POST /ui/login", s.handleLogin)
	mux.HandleFunc("POST /ui/logout", s.handleSignOut)
}

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
}

func (s *Service) handlePage(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	if kind, cookie := s.auth.identify(r, s.now()); kind == authCookie {
		pageTmpl.ExecuteTemplate(w, "app.html", map[string]any{"CSRF": s.auth.csrfToken(cookie), "Sim": s.cfg.Sim != nil})
		return
	}
	// Login CSRF: the form carries a random token that must match a
	// cookie only this origin could have set (double submit).
	tok := newSecret()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/ui/login", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 3600})
	w.WriteHeader(http.StatusOK)
	pageTmpl.ExecuteTemplate(w, "login.html", map[string]any{"CSRF": tok, "Failed": r.URL.Query().Get("failed") == "1"})
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "bad form")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !equalConst(c.Value, r.PostForm.Get("csrf")) {
		writeProblem(w, r, http.StatusForbidden, "csrf", "reload the page and sign in again")
		return
	}
	if !s.auth.checkKey(r.PostForm.Get("key")) {
		s.log.Warn("serve: page sign-in with a wrong API key", "remote", r.RemoteAddr)
		http.Redirect(w, r, "/?failed=1", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.auth.newCookie(s.now()), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(cookieTTL / time.Second)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Service) handleSignOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	kind, cookie := s.auth.identify(r, s.now())
	if kind == authCookie {
		if err := r.ParseForm(); err != nil || !sameOrigin(r) || !equalConst(r.PostForm.Get("csrf"), s.auth.csrfToken(cookie)) {
			writeProblem(w, r, http.StatusForbidden, "csrf", "")
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Service) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	b, _ := assetFS.ReadFile("openapi.json")
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
