package live

import (
	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// maintenance is the policy of maintenance windows (/api/v1/silences): a gap
// that started or was detected inside a window of its stream is planned,
// recorded with all its lifecycle but never published. The windows are
// reloaded every step; the planned gaps are rebuilt by the start-up replay.
type maintenance struct {
	silences []storage.Silence // the windows, as last loaded
	planned  map[string]bool   // open planned gaps, by gap id
}

// plan marks the alerts of a gap that started or was detected inside a
// maintenance window as planned.
func (m *maintenance) plan(a storage.Alert) storage.Alert {
	if a.Type == detect.TypeGapOpened {
		for _, s := range m.silences {
			if s.Covers(a.Tenant, a.Source, a.StartedAt) || s.Covers(a.Tenant, a.Source, a.DetectedAt) {
				m.planned[a.GapID] = true
				break
			}
		}
	}
	if m.planned[a.GapID] {
		a.Planned = true
		if a.Type == detect.TypeGapResolved {
			delete(m.planned, a.GapID)
		}
	}
	return a
}
