package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walinkdev/walink"
	"github.com/walinkdev/walink/serve"
	"github.com/walinkdev/walink/store/sqlite"
	"github.com/walinkdev/walink/watest"
)

// Run the service on a SQLite store against the local WhatsApp, create a
// session through the API and wait until it shows a QR code.
func ExampleNew() {
	ctx := context.Background()
	wa, err := watest.Start(ctx, watest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer wa.Close()
	dir, _ := os.MkdirTemp("", "walink-serve-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "walink.db")
	st, err := sqlite.Open(ctx, path) // the store first: it creates the file with safe permissions
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	db, err := serve.OpenSQLite(ctx, path) // the service's own tables, same file
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	const key = "example-api-key-0123456789"
	svc, err := serve.New(ctx, serve.Config{Store: st, DB: db,
		Client:  walink.Config{ServerURL: wa.URL(), ServerRoot: wa.RootKey()},
		APIKeys: []serve.KeyHash{serve.HashAPIKey(key)}})
	if err != nil {
		log.Fatal(err)
	}
	svc.Start()
	hs := httptest.NewServer(svc.Handler())
	defer func() {
		svc.CloseStreams()
		hs.Close()
		svc.Shutdown(ctx)
	}()

	call := func(method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	s := call("POST", "/v1/sessions", `{"name":"front desk"}`)
	id := s["id"].(string)
	for s["status"] != "scan_qr" {
		time.Sleep(20 * time.Millisecond)
		s = call("GET", "/v1/sessions/"+id, "")
	}
	qr := call("GET", "/v1/sessions/"+id+"/qr", "")
	fmt.Println(s["name"], s["status"], strings.HasPrefix(qr["qr"].(string), "https://wa.me/settings/linked_devices#"))
	// Output: front desk scan_qr true
}
