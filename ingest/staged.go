package ingest

import (
	"bytes"
	"time"

	"github.com/gapwatch/gapwatch/ingest/decode"
)

// Staged holds the events decoded from one message until Counter.Apply counts
// them all at once together with the message's offset. Reused per partition.
type Staged struct {
	buf     []byte
	events  []stagedEvent
	rejects []rejection
}

type rejection struct {
	reason decode.Reason
	detail string
}

type stagedEvent struct {
	tenantEnd, sourceEnd int // ends in buf; each starts where the previous ends
	time                 time.Time
}

// Reset empties s for the next message.
func (s *Staged) Reset() { s.buf, s.events, s.rejects = s.buf[:0], s.events[:0], s.rejects[:0] }

// Reject records that a record of the message (or the whole message) is not counted.
func (s *Staged) Reject(reason decode.Reason, detail string) {
	s.rejects = append(s.rejects, rejection{reason, detail})
}

// Add copies ev into s.
func (s *Staged) Add(ev decode.Event) {
	s.buf = append(s.buf, ev.Tenant...)
	t := len(s.buf)
	s.buf = append(s.buf, ev.Source...)
	s.events = append(s.events, stagedEvent{tenantEnd: t, sourceEnd: len(s.buf), time: ev.Time})
}

// sameStream reports whether staged events i and j are of the same stream.
func (s *Staged) sameStream(i, j int) bool {
	ti, si, _ := s.at(i)
	tj, sj, _ := s.at(j)
	return bytes.Equal(ti, tj) && bytes.Equal(si, sj)
}

// Len returns the number of staged events.
func (s *Staged) Len() int { return len(s.events) }

func (s *Staged) at(i int) (tenant, source []byte, t time.Time) {
	start := 0
	if i > 0 {
		start = s.events[i-1].sourceEnd
	}
	e := s.events[i]
	return s.buf[start:e.tenantEnd], s.buf[e.tenantEnd:e.sourceEnd], e.time
}
