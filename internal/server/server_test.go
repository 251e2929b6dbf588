package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The handler without an inspector, as a program would mount it: health,
// pprof and fgprof, a token in front of /api and /debug, the caller's
// routes beside, and the API's JSON 404 for what is not there.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(New(Options{Token: "s3cret", Routes: func(mux *http.ServeMux) {
		mux.HandleFunc("GET /api/v1/mine", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mine") })
	}}))
	defer srv.Close()
	for _, c := range []struct {
		path, token string
		want        int
		body        string
	}{
		{"/healthz", "", 200, "ok"},
		{"/api/v1/mine", "", 401, "missing or wrong token"},
		{"/api/v1/mine", "s3cret", 200, "mine"},
		{"/api/v1/snapshot", "s3cret", 404, "no endpoint GET /api/v1/snapshot"},
		{"/debug/pprof/", "", 401, ""},
		{"/debug/pprof/goroutineleak?debug=1", "s3cret", 200, "goroutineleak profile: total"},
		{"/debug/fgprof?seconds=0", "", 401, ""},
	} {
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || !strings.Contains(string(b), c.body) {
			t.Errorf("GET %s with token %q = %d %.200s; want %d with %q", c.path, c.token, resp.StatusCode, b, c.want, c.body)
		}
	}
}
