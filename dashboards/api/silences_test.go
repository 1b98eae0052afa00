package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

func TestSilences(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{}, api.Deps{Silences: memstore.New(0)}).Handler())
	t.Cleanup(srv.Close)
	post := func(body string) (int, string) {
		resp, err := http.Post(srv.URL+"/api/v1/silences", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := post(`{"tenant":"acme","source":"fw","starts_at":"2026-11-20T10:00:00Z","ends_at":"2026-11-20T12:00:00Z","comment":"firmware"}`)
	require.Equal(t, http.StatusCreated, code, body)
	var created struct{ ID, Tenant, Source string }
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	require.Len(t, created.ID, 16)

	for _, bad := range []string{
		`{"source":"fw","ends_at":"2026-11-20T12:00:00Z"}`,                                      // no tenant
		`{"tenant":"acme","starts_at":"2026-11-20T12:00:00Z","ends_at":"2026-11-20T10:00:00Z"}`, // backwards
		`{"tenant":"acme","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-11-20T10:00:00Z"}`, // too long
		`{"tenant":"acme","ends_at":"tomorrow"}`,
		`{"tenant":"acme","ends_at":"2026-11-20T12:00:00Z","extra":1}`,
		`not json`,
	} {
		code, body := post(bad)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}

	code, body = get(t, srv.URL+"/api/v1/silences")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"comment":"firmware"`)
	require.Contains(t, body, `"starts_at":"2026-11-20T10:00:00Z"`)

	del := func(id string) int {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/v1/silences/"+id, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNoContent, del(created.ID))
	require.Equal(t, http.StatusNotFound, del(created.ID))
	code, body = get(t, srv.URL+"/api/v1/silences")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `[]`, body)
}
