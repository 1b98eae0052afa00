package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// The stores list, and the detector applies, only the newest
// storage.MaxSilences silences: creating more must be refused, or a flood of
// new ones would silently switch off older, still active maintenance windows.
func TestSilenceLimits(t *testing.T) {
	st := memstore.New(0)
	srv := httptest.NewServer(api.New(api.Config{}, api.Deps{Silences: st}).Handler())
	t.Cleanup(srv.Close)
	create := func(tenant string) (int, string) {
		return do(t, srv, call{method: "POST", path: "/api/v1/silences", contentType: "application/json",
			body: fmt.Sprintf(`{"tenant":%q,"ends_at":%q}`, tenant, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))})
	}
	for range api.MaxActiveSilencesPerTenant {
		code, body := create("acme")
		require.Equal(t, http.StatusCreated, code, body)
	}
	code, body := create("acme")
	require.Equal(t, http.StatusConflict, code, "one tenant cannot use up the room: %s", body)
	code, body = create("globex")
	require.Equal(t, http.StatusCreated, code, body)

	// Fill the store to its limit with ended silences of other tenants: kept,
	// as recent history, until they are old.
	ctx := context.Background()
	all, err := st.Silences(ctx)
	require.NoError(t, err)
	ended := time.Now().Add(-24 * time.Hour)
	for i := len(all); i < storage.MaxSilences; i++ {
		require.NoError(t, st.PutSilence(ctx, storage.Silence{ID: fmt.Sprintf("old%04d", i), Tenant: fmt.Sprintf("t%d", i),
			StartsAt: ended.Add(-time.Hour), EndsAt: ended, Created: ended.Add(-time.Hour)}))
	}
	code, body = create("initech")
	require.Equal(t, http.StatusConflict, code, "the store is full: %s", body)
	all, err = st.Silences(ctx)
	require.NoError(t, err)
	require.Len(t, all, storage.MaxSilences)

	// Silences that ended long ago make room.
	long := time.Now().Add(-api.SilenceRetention - time.Hour)
	for i := range 10 {
		require.NoError(t, deleted(st.DeleteSilence(ctx, fmt.Sprintf("old%04d", 500+i))))
		require.NoError(t, st.PutSilence(ctx, storage.Silence{ID: fmt.Sprintf("ancient%d", i), Tenant: "t", StartsAt: long.Add(-time.Hour), EndsAt: long, Created: long}))
	}
	code, body = create("initech")
	require.Equal(t, http.StatusCreated, code, body)
	all, err = st.Silences(ctx)
	require.NoError(t, err)
	require.Len(t, all, storage.MaxSilences-10+1, "the ancient ones were deleted")
	for _, sl := range all {
		require.NotContains(t, sl.ID, "ancient")
	}
}

func deleted(ok bool, err error) error {
	if err == nil && !ok {
		err = fmt.Errorf("not found")
	}
	return err
}
