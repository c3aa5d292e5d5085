package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiDoc is the OpenAPI document, parsed once.
var apiDoc = func() map[string]any {
	b, err := assetFS.ReadFile("openapi.json")
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}()

// TestOpenAPIRoutes: the document lists exactly the routes the service
// registers, each with its method.
func TestOpenAPIRoutes(t *testing.T) {
	var inCode, inDoc []string
	for _, rt := range apiRoutes {
		inCode = append(inCode, rt.Method+" "+rt.Pattern)
	}
	for path, item := range apiDoc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			if m == "parameters" {
				continue
			}
			inDoc = append(inDoc, strings.ToUpper(m)+" "+path)
		}
	}
	sort.Strings(inCode)
	sort.Strings(inDoc)
	if strings.Join(inCode, "\n") != strings.Join(inDoc, "\n") {
		t.Fatalf("routes in code:\n%s\n\nroutes in openapi.json:\n%s", strings.Join(inCode, "\n"), strings.Join(inDoc, "\n"))
	}
	if apiDoc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", apiDoc["openapi"])
	}
	// Every problem type the code can write is in the document's enum.
	enum := schemaAt("#/components/schemas/Problem")["properties"].(map[string]any)["type"].(map[string]any)["enum"].([]any)
	have := map[string]bool{}
	for _, e := range enum {
		have[e.(string)] = true
	}
	for name := range problemTitles {
		if !have[problemType(name)] {
			t.Errorf("problem type %s missing from openapi.json", name)
		}
	}
	if len(enum) != len(problemTitles) {
		t.Errorf("openapi.json lists %d problem types, code has %d", len(enum), len(problemTitles))
	}
}

func schemaAt(ref string) map[string]any {
	var cur any = apiDoc
	for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		cur = cur.(map[string]any)[p]
	}
	return cur.(map[string]any)
}

// validator is an http.RoundTripper that checks every response of the
// API against the document: the route and status must be documented, the
// content type must be one the document lists for it, and a JSON body
// must match the schema. Every API test runs through it, so the document
// is validated against live responses of every test.
type validator struct {
	t    testing.TB
	base http.RoundTripper
	mu   sync.Mutex
	seen map[string]bool // "METHOD path status" covered
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

func matchPath(path string) (string, bool) {
	for p := range apiDoc["paths"].(map[string]any) {
		re := "^" + pathParam.ReplaceAllString(p, `[^/]+`) + "$"
		if ok, _ := regexp.MatchString(re, path); ok {
			return p, true
		}
	}
	return "", false
}

func (v *validator) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/v1/") {
		return resp, err
	}
	tmpl, ok := matchPath(req.URL.Path)
	if !ok {
		return resp, err // an undocumented path: must be a 404 problem, checked by the tests
	}
	op, _ := apiDoc["paths"].(map[string]any)[tmpl].(map[string]any)[strings.ToLower(req.Method)].(map[string]any)
	if op == nil {
		return resp, err
	}
	code := strconv.Itoa(resp.StatusCode)
	r, _ := op["responses"].(map[string]any)[code].(map[string]any)
	if r == nil {
		v.t.Errorf("openapi: %s %s answered %d, not documented", req.Method, tmpl, resp.StatusCode)
		return resp, err
	}
	v.mu.Lock()
	v.seen[req.Method+" "+tmpl+" "+code] = true
	v.mu.Unlock()
	content, _ := r["content"].(map[string]any)
	ct := resp.Header.Get("Content-Type")
	if content == nil {
		if resp.StatusCode != http.StatusNoContent && ct != "" {
			v.t.Errorf("openapi: %s %s %d has Content-Type %q, document lists no content", req.Method, tmpl, resp.StatusCode, ct)
		}
		return resp, err
	}
	mt, _, _ := mime.ParseMediaType(ct)
	media, _ := content[mt].(map[string]any)
	if media == nil {
		v.t.Errorf("openapi: %s %s %d has Content-Type %q, document lists %v", req.Method, tmpl, resp.StatusCode, ct, keys(content))
		return resp, err
	}
	if !strings.Contains(mt, "json") {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, err
	}
	var val any
	if jerr := json.Unmarshal(body, &val); jerr != nil {
		v.t.Errorf("openapi: %s %s %d: body is not JSON: %v", req.Method, tmpl, resp.StatusCode, jerr)
		return resp, err
	}
	if verr := validate(media["schema"].(map[string]any), val, "$"); verr != nil {
		v.t.Errorf("openapi: %s %s %d: %v\nbody: %s", req.Method, tmpl, resp.StatusCode, verr, body)
	}
	return resp, err
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validate checks v against the JSON Schema subset the document uses; an
// unknown keyword fails, so the check cannot silently pass on schema it
// does not understand.
func validate(s map[string]any, v any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		return validate(schemaAt(ref), v, at)
	}
	for k := range s {
		switch k {
		case "type", "properties", "required", "additionalProperties", "items", "enum", "format", "description",
			"minLength", "maxLength", "default", "contentMediaType":
		default:
			return fmt.Errorf("%s: validator does not know keyword %q", at, k)
		}
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			if x == v {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: %v not in enum %v", at, v, e)
		}
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want object, got %T", at, v)
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: missing required %q", at, r)
			}
		}
		for k, x := range m {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s: unexpected property %q", at, k)
				}
				continue
			}
			if err := validate(ps, x, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want array, got %T", at, v)
		}
		if it, ok := s["items"].(map[string]any); ok {
			for i, x := range a {
				if err := validate(it, x, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want string, got %T", at, v)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				return fmt.Errorf("%s: not a date-time: %q", at, str)
			}
		}
		if n, ok := s["minLength"].(float64); ok && len(str) < int(n) {
			return fmt.Errorf("%s: shorter than %v", at, n)
		}
		if n, ok := s["maxLength"].(float64); ok && len(str) > int(n) {
			return fmt.Errorf("%s: longer than %v", at, n)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: want integer, got %v", at, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want boolean, got %T", at, v)
		}
	case nil:
	default:
		return fmt.Errorf("%s: validator does not know type %v", at, s["type"])
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestValidatorRefuses: the validator is not a rubber stamp.
func TestValidatorRefuses(t *testing.T) {
	sess := map[string]any{"$ref": "#/components/schemas/Session"}
	good := map[string]any{"id": "s_1", "name": "a", "status": "connected", "running": true, "transitions": []any{}, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
	if err := validate(sess, good, "$"); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(m map[string]any){
		"bad status":   func(m map[string]any) { m["status"] = "online" },
		"missing id":   func(m map[string]any) { delete(m, "id") },
		"extra field":  func(m map[string]any) { m["surprise"] = 1 },
		"bad time":     func(m map[string]any) { m["created_at"] = "yesterday" },
		"running type": func(m map[string]any) { m["running"] = "yes" },
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		mutate(m)
		if validate(sess, m, "$") == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
