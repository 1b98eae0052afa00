package live

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// The three kinds of alert share one CloudEvents envelope; their bytes are
// what consumers parse and stay as they were.
func TestAlertEnvelopes(t *testing.T) {
	d, err := New(Config{Topics: []string{"logs"}}, Deps{Store: memstore.New(0), Sink: &fakeSink{}, Input: oneTopic{}})
	require.NoError(t, err)
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	gap := gapAlert(detect.Event{Type: detect.TypeGapOpened, Time: at, Origin: detect.DefaultEventSource, GapID: "g1",
		Tenant: "t", Source: "a b", Kind: detect.KindSilence, StartedAt: at.Add(-time.Minute), DetectedAt: at,
		Expected: 10.4, BucketSeconds: 60})
	pipeline := d.degradedAlert(true, "stalled", at)
	cov := d.coverageAlert("t", "edr", at.Unix()-3600, at.Unix(), 3600)
	for _, c := range []struct{ got, want string }{
		{string(gap.Payload), `{"specversion":"1.0","type":"io.gapwatch.gap.opened","source":"/gapwatch/detect","id":"` + gap.ID + `","time":"2026-11-20T10:00:00Z","subject":"t/a%20b","datacontenttype":"application/json","data":{"gap_id":"g1","tenant":"t","source":"a b","kind":"silence","started_at":"2026-11-20T09:59:00Z","detected_at":"2026-11-20T10:00:00Z","expected_events":10,"observed_events":0,"missing_events":0,"sequence":0,"bucket_seconds":60}}`},
		{string(pipeline.Payload), `{"specversion":"1.0","type":"io.gapwatch.pipeline.degraded","source":"/gapwatch/detect","id":"` + pipeline.ID + `","time":"2026-11-20T10:00:00Z","subject":"pipeline","datacontenttype":"application/json","data":{"state":"degraded","reason":"stalled","watermark":"2026-11-20T10:00:00Z","lag_seconds":0,"streams":0,"shard":0,"shards":1}}`},
		{string(cov.Payload), `{"specversion":"1.0","type":"io.gapwatch.coverage.missing","source":"/gapwatch/detect","id":"` + cov.ID + `","time":"2026-11-20T10:00:00Z","subject":"t/edr","datacontenttype":"application/json","data":{"tenant":"t","source":"edr","since":"2026-11-20T09:00:00Z","never_seen":true,"detected_at":"2026-11-20T10:00:00Z","max_silence_seconds":3600}}`},
	} {
		require.Equal(t, c.want, c.got)
	}
	require.Equal(t, []string{"682005cd1357f7eb6a23aebfd38f5f27", "2afaa7939af894d86313d36d4b6a4121", "49b2fef106410d45bbc67b5d651690ac"}, []string{gap.ID, pipeline.ID, cov.ID}, "ids unchanged")
}
