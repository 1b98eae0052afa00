package live

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// CloudEvents types of the pipeline's own health (CONTRACT.md).
const (
	TypePipelineDegraded  = "io.gapwatch.pipeline.degraded"
	TypePipelineHeartbeat = "io.gapwatch.pipeline.heartbeat"
)

// PipelineKey is the Kafka key of pipeline alerts.
const PipelineKey = "pipeline"

// gapAlert is a gap lifecycle event as stored and published.
func gapAlert(ev detect.Event) storage.Alert {
	payload, err := ev.MarshalJSON()
	if err != nil {
		panic("live: marshalling an event: " + err.Error()) // strings and numbers only
	}
	return storage.Alert{
		ID: ev.ID(), Type: ev.Type, Time: ev.Time, Key: ev.Subject(), Payload: payload,
		GapID: ev.GapID, Tenant: ev.Tenant, Source: ev.Source, Kind: string(ev.Kind),
		StartedAt: ev.StartedAt, DetectedAt: ev.DetectedAt, EndedAt: ev.EndedAt,
		Expected: ev.Expected, Observed: ev.Observed, Missing: ev.Missing, Seq: ev.Seq,
	}
}

type pipelineData struct {
	State      string  `json:"state"` // degraded, recovered; ok or degraded for heartbeats
	Reason     string  `json:"reason,omitempty"`
	Watermark  string  `json:"watermark,omitempty"` // judged up to here
	LagSeconds float64 `json:"lag_seconds"`
	Streams    int     `json:"streams"`
	Shard      int     `json:"shard"`
	Shards     int     `json:"shards"`
}

func (d *Detector) pipelineAlert(typ string, at time.Time, data pipelineData) storage.Alert {
	ec := d.engine.Config()
	data.Shard, data.Shards = ec.Shard, ec.Shards
	data.Streams = d.engine.Streams()
	// Deterministic: the same instance, type, state and time give the same id.
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(data.State))
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], uint64(at.Unix()))
	binary.BigEndian.PutUint64(b[8:], uint64(ec.Shard))
	binary.BigEndian.PutUint64(b[16:], uint64(ec.Shards))
	h.Write(b[:])
	ce := detect.NewEnvelope(typ, ec.EventSource, hex.EncodeToString(h.Sum(nil)[:16]), at, PipelineKey, data)
	return storage.Alert{ID: ce.ID, Type: typ, Time: at.UTC(), Key: PipelineKey, Payload: ce.JSON()}
}

// degradedAlert says the pipeline went bad (or recovered) with detection
// judged up to judged.
func (d *Detector) degradedAlert(bad bool, reason string, judged time.Time) storage.Alert {
	state := "recovered"
	if bad {
		state = "degraded"
	}
	return d.pipelineAlert(TypePipelineDegraded, judged, pipelineData{
		State: state, Reason: reason, Watermark: judged.UTC().Format(time.RFC3339)})
}

// heartbeat is the dead man's switch, once per period of the wall clock.
func (d *Detector) heartbeat(now, wm time.Time, lag time.Duration) storage.Alert {
	state := "ok"
	if d.degraded {
		state = "degraded"
	}
	data := pipelineData{State: state, LagSeconds: lag.Round(time.Second).Seconds(),
		Watermark: time.Unix(d.judged, 0).UTC().Format(time.RFC3339)}
	return d.pipelineAlert(TypePipelineHeartbeat, now.Truncate(d.cfg.Heartbeat), data)
}
