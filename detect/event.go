package detect

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"time"
)

// Kind is what kind of gap a stream has.
type Kind string

const (
	// KindSilence: the stream stopped sending (no events where events were certain).
	KindSilence Kind = "silence"
	// KindDrop: the stream sends clearly less than its baseline (partial loss).
	KindDrop Kind = "drop"
	// KindLate: the stream's events arrive clearly later than they normally do.
	KindLate Kind = "late"
)

// CloudEvents types of the gap lifecycle (CONTRACT.md).
const (
	TypeGapOpened   = "io.gapwatch.gap.opened"
	TypeGapUpdated  = "io.gapwatch.gap.updated"
	TypeGapResolved = "io.gapwatch.gap.resolved"
)

// DefaultEventSource is the CloudEvents source of the alerts.
const DefaultEventSource = "/gapwatch/detect"

// StreamID is a stream's identifier, used as the CloudEvents subject and the
// Kafka message key: tenant and source, each path-escaped, joined by "/".
func StreamID(tenant, source string) string {
	return url.PathEscape(tenant) + "/" + url.PathEscape(source)
}

// GapID is the deterministic identifier of a gap: the same stream, kind and
// first missing bucket give the same id on replay and on every replica.
func GapID(tenant, source string, kind Kind, start time.Time) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start.Unix()))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Event is one step of a gap's lifecycle: opened, updated or resolved.
// Everything in it derives from the counts and the bucket clock, never from the
// wall clock, so a replay produces the same events.
type Event struct {
	Type   string // TypeGapOpened, TypeGapUpdated or TypeGapResolved
	Time   time.Time
	Origin string // CloudEvents source
	GapID  string
	Tenant string
	Source string
	Kind   Kind
	// StartedAt is the start of the first bucket judged missing (the end of the
	// last healthy one); DetectedAt the bucket end at which the gap was opened;
	// EndedAt, set on resolve only, the start of the bucket from which the
	// stream was healthy again.
	StartedAt, DetectedAt, EndedAt time.Time
	// Expected and Observed events from StartedAt up to Time (or EndedAt);
	// Missing is the estimate max(0, Expected − Observed). For a late gap,
	// Expected counts the events received, Observed those on time and Missing
	// those later than the stream's norm.
	Expected, Observed, Missing float64
	Seq                         uint32 // 0 for opened, then +1 per event of the same gap
	BucketSeconds               int64
	// Retired is set on the gap.resolved that closes an open gap because its
	// stream was retired (Config.RetireAfter without events); EndedAt is then
	// the retirement time, not a recovery.
	Retired bool
}

// Subject returns the stream id (the CloudEvents subject and Kafka key).
func (ev *Event) Subject() string { return StreamID(ev.Tenant, ev.Source) }

// ID returns the deterministic CloudEvents id: a hash of gap id, type and sequence.
func (ev *Event) ID() string {
	h := sha256.New()
	h.Write([]byte(ev.GapID))
	h.Write([]byte{0})
	h.Write([]byte(ev.Type))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], ev.Seq)
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Envelope is a CloudEvents 1.0 event in structured mode with data of type
// D, fields in the order published: the one envelope of every alert (gap
// lifecycle, pipeline health, coverage).
type Envelope[D any] struct {
	SpecVersion     string `json:"specversion"`
	Type            string `json:"type"`
	Source          string `json:"source"`
	ID              string `json:"id"`
	Time            string `json:"time"`
	Subject         string `json:"subject"`
	DataContentType string `json:"datacontenttype"`
	Data            D      `json:"data"`
}

// NewEnvelope returns the envelope of an event of type typ from source with
// the given id, time (RFC 3339, UTC, whole seconds) and subject.
func NewEnvelope[D any](typ, source, id string, at time.Time, subject string, data D) Envelope[D] {
	return Envelope[D]{SpecVersion: "1.0", Type: typ, Source: source, ID: id, Time: rfc3339(at),
		Subject: subject, DataContentType: "application/json", Data: data}
}

// JSON returns the event's JSON. D must hold only strings, numbers and
// booleans, which cannot fail to marshal; a failure panics.
func (e Envelope[D]) JSON() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic("detect: marshalling a " + e.Type + " event: " + err.Error())
	}
	return b
}

type gapData struct {
	GapID         string `json:"gap_id"`
	Tenant        string `json:"tenant"`
	Source        string `json:"source"`
	Kind          Kind   `json:"kind"`
	StartedAt     string `json:"started_at"`
	DetectedAt    string `json:"detected_at"`
	EndedAt       string `json:"ended_at,omitempty"`
	Expected      uint64 `json:"expected_events"`
	Observed      uint64 `json:"observed_events"`
	Missing       uint64 `json:"missing_events"`
	Sequence      uint32 `json:"sequence"`
	BucketSeconds int64  `json:"bucket_seconds"`
	Retired       bool   `json:"retired,omitempty"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func roundCount(v float64) uint64 {
	if v <= 0 || math.IsNaN(v) {
		return 0
	}
	return uint64(math.Round(v))
}

// MarshalJSON renders the event as a CloudEvents 1.0 structured-mode JSON
// object with a stable field order; event counts are rounded to whole events.
// These are exactly the bytes published on the alert topic.
func (ev Event) MarshalJSON() ([]byte, error) {
	data := gapData{
		GapID:         ev.GapID,
		Tenant:        ev.Tenant,
		Source:        ev.Source,
		Kind:          ev.Kind,
		StartedAt:     rfc3339(ev.StartedAt),
		DetectedAt:    rfc3339(ev.DetectedAt),
		Expected:      roundCount(ev.Expected),
		Observed:      roundCount(ev.Observed),
		Missing:       roundCount(ev.Missing),
		Sequence:      ev.Seq,
		BucketSeconds: ev.BucketSeconds,
		Retired:       ev.Retired,
	}
	if !ev.EndedAt.IsZero() {
		data.EndedAt = rfc3339(ev.EndedAt)
	}
	return json.Marshal(NewEnvelope(ev.Type, ev.Origin, ev.ID(), ev.Time, ev.Subject(), data))
}

// AppendLine appends the event's JSON and a newline to dst.
func (ev Event) AppendLine(dst []byte) []byte {
	b, err := ev.MarshalJSON()
	if err != nil {
		panic("detect: marshalling an event: " + err.Error()) // only strings and numbers: cannot fail
	}
	return append(append(dst, b...), '\n')
}

// eventLess orders events deterministically: by time, stream, gap, sequence.
func eventLess(a, b *Event) int {
	return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.Source, b.Source),
		strings.Compare(a.GapID, b.GapID), cmp.Compare(a.Seq, b.Seq))
}
