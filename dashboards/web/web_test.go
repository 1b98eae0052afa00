package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/dashboards/web"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// server is the API with the page mounted, as cmd/gapwatch wires it.
func server(t testing.TB) *httptest.Server {
	st := memstore.New(0)
	srv := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: st, Gaps: st, Page: web.Handler()}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t testing.TB, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestPageAndAssets(t *testing.T) {
	srv := server(t)
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="assets/app.js" defer></script>`},
		{"/assets/app.js", "text/javascript; charset=utf-8", "api/v1/"},
		{"/assets/style.css", "text/css; charset=utf-8", ".fleet-grid"},
		{"/assets/favicon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := fetch(t, http.MethodGet, srv.URL+tc.path)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"))
			require.Equal(t, web.Policy, resp.Header.Get("Content-Security-Policy"))
			require.True(t, strings.HasPrefix(web.Policy, "default-src 'self'"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Contains(t, body, tc.contains)

			// Revalidation by hash: the same file answers 304.
			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag)
			resp, body = fetch(t, http.MethodGet, srv.URL+tc.path, "If-None-Match", etag)
			require.Equal(t, http.StatusNotModified, resp.StatusCode)
			require.Empty(t, body)

			resp, body = fetch(t, http.MethodHead, srv.URL+tc.path)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Empty(t, body)
		})
	}
}

func TestUnknownPaths(t *testing.T) {
	srv := server(t)
	for _, p := range []string{"/index.html", "/assets/index.html", "/assets/", "/assets", "/assets/nope.js",
		"/assets/../assets/app.js/", "/nope", "/api/v1/nope", "/app.js"} {
		resp, _ := fetch(t, http.MethodGet, srv.URL+p)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
	resp, _ := fetch(t, http.MethodPost, srv.URL+"/")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// Without a page the API serves no root at all.
	st := memstore.New(0)
	bare := httptest.NewServer(api.New(api.Config{}, api.Deps{Rates: st}).Handler())
	defer bare.Close()
	resp, _ = fetch(t, http.MethodGet, bare.URL+"/")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// Every file the page links to is embedded; nothing is loaded from elsewhere.
func TestPageLinksOnlyEmbeddedFiles(t *testing.T) {
	srv := server(t)
	_, page := fetch(t, http.MethodGet, srv.URL+"/")
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1)
	require.NotEmpty(t, refs)
	for _, m := range refs {
		ref := m[1]
		require.False(t, strings.Contains(ref, "//"), "external reference %q", ref)
		if !strings.HasPrefix(ref, "assets/") {
			continue // links to the API for people, not files of the page
		}
		resp, _ := fetch(t, http.MethodGet, srv.URL+"/"+ref)
		require.Equal(t, http.StatusOK, resp.StatusCode, ref)
	}
	require.NotContains(t, page, "<script>", "no inline script: the policy would block it")
	require.NotContains(t, page, "style=", "no inline style: the policy would block it")
}

// Tenant and source names are untrusted: the script builds the DOM from text
// nodes and attributes, never from markup.
func TestScriptWritesNoMarkup(t *testing.T) {
	srv := server(t)
	_, js := fetch(t, http.MethodGet, srv.URL+"/assets/app.js")
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"setAttribute('style'", "javascript:"} {
		require.NotContains(t, js, sink)
	}
}
