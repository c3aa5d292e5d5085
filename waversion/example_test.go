package waversion_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/walinkdev/walink/waversion"
)

// Fetch the current WhatsApp Web version from a service-worker script;
// here a local one, as the local WhatsApp (watest) serves at /sw.js.
func ExampleFetcher_Fetch() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `self.__swData=JSON.parse("{\"client_revision\":1045368834}");`)
	}))
	defer srv.Close()

	f := &waversion.Fetcher{URL: srv.URL + "/sw.js", Client: waversion.NewHTTPClient(nil, nil)}
	v, err := f.Fetch(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v)
	// Output: 2.3000.1045368834
}

func ExampleParseServiceWorker() {
	v, err := waversion.ParseServiceWorker([]byte(`{"client_revision":1031080782}`))
	fmt.Println(v, err)
	// Output: 2.3000.1031080782 <nil>
}
