package live

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/storage"
)

// TypeCoverageMissing is the alert for a required source that is not arriving.
const TypeCoverageMissing = "io.gapwatch.coverage.missing"

// CoverageRule says which sources tenants must send. A source that was never
// seen, or not seen for MaxSilence, is a coverage hole: one coverage.missing
// alert when it starts; the source's own gap lifecycle takes over once it sends.
type CoverageRule struct {
	// Tenants the rule applies to; "*" means every tenant the detector has seen.
	Tenants []string `yaml:"tenants"`
	// Labels selects tenants too: those that carry all of them in
	// Config.TenantLabels (seen or not).
	Labels  []string `yaml:"labels"`
	Sources []string `yaml:"sources"`
	// MaxSilence is how long a required source may be absent. Default 1h.
	MaxSilence time.Duration `yaml:"max_silence"`
}

// ValidateCoverage reports an unusable policy.
func ValidateCoverage(rules []CoverageRule) error {
	for i, r := range rules {
		switch {
		case len(r.Tenants) == 0 && len(r.Labels) == 0 || len(r.Sources) == 0:
			return fmt.Errorf("detect: coverage rule %d needs sources, and tenants or labels", i+1)
		case slices.Contains(r.Labels, ""):
			return fmt.Errorf("detect: coverage rule %d names an empty label", i+1)
		case r.MaxSilence < 0:
			return fmt.Errorf("detect: coverage rule %d: max_silence must not be negative", i+1)
		case slices.Contains(r.Sources, "") || slices.Contains(r.Tenants, ""):
			return errors.New("detect: coverage rules must not name an empty tenant or source")
		}
	}
	return nil
}

// coverage is the policy's state: the holes already reported.
type coverage struct {
	rules   []CoverageRule
	labels  map[string][]string // tenant → labels
	missing map[streamKey]bool
	since   int64 // start of the history watched: a never-seen source is absent since then
}

// checkCoverage returns an alert for every required stream of this shard that became
// missing at judged (Unix seconds, a bucket end).
func (d *Detector) checkCoverage(judged int64) []storage.Alert {
	cv := &d.coverage
	since := cv.since
	if len(cv.rules) == 0 {
		return nil
	}
	var tenantsSeen []string
	for k := range d.streams.streams {
		if !slices.Contains(tenantsSeen, k.tenant) {
			tenantsSeen = append(tenantsSeen, k.tenant)
		}
	}
	slices.Sort(tenantsSeen)
	var out []storage.Alert
	for _, r := range cv.rules {
		maxSilence := int64(r.MaxSilence / time.Second)
		if maxSilence == 0 {
			maxSilence = 3600
		}
		var tenants []string
		for _, t := range r.Tenants {
			if t == "*" {
				tenants = append(tenants, tenantsSeen...)
			} else {
				tenants = append(tenants, t)
			}
		}
		tenants = append(tenants, cv.labelled(r.Labels)...)
		slices.Sort(tenants)
		tenants = slices.Compact(tenants)
		for _, tenant := range tenants {
			for _, source := range r.Sources {
				if !d.engine.OwnsStream(tenant, source) {
					continue
				}
				k := streamKey{tenant, source}
				last := since
				if st, ok := d.streams.streams[k]; ok && !st.LastSeen.IsZero() {
					last = st.LastSeen.Unix() + d.width
				}
				gone := judged-last >= maxSilence
				if gone && !cv.missing[k] {
					out = append(out, d.coverageAlert(tenant, source, last, judged, maxSilence))
				}
				cv.missing[k] = gone
			}
		}
	}
	return out
}

// labelled returns the tenants that carry every one of labels, sorted; none
// for no labels.
func (cv *coverage) labelled(labels []string) []string {
	if len(labels) == 0 {
		return nil
	}
	var out []string
	for tenant, have := range cv.labels {
		if !slices.ContainsFunc(labels, func(l string) bool { return !slices.Contains(have, l) }) {
			out = append(out, tenant)
		}
	}
	slices.Sort(out)
	return out
}

type coverageData struct {
	Tenant            string  `json:"tenant"`
	Source            string  `json:"source"`
	Since             string  `json:"since"` // end of the last bucket with events, or the start of the history watched
	NeverSeen         bool    `json:"never_seen"`
	DetectedAt        string  `json:"detected_at"`
	MaxSilenceSeconds float64 `json:"max_silence_seconds"`
}

func (d *Detector) coverageAlert(tenant, source string, since, at, maxSilence int64) storage.Alert {
	_, seen := d.streams.streams[streamKey{tenant, source}]
	idSince := since
	if !seen {
		idSince = 0 // the same hole across restarts, whatever history was replayed
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", TypeCoverageMissing, tenant, source, idSince)
	ce := detect.NewEnvelope(TypeCoverageMissing, d.engine.Config().EventSource, hex.EncodeToString(h.Sum(nil)[:16]),
		time.Unix(at, 0), detect.StreamID(tenant, source),
		coverageData{Tenant: tenant, Source: source, Since: rfc3339(since), NeverSeen: !seen,
			DetectedAt: rfc3339(at), MaxSilenceSeconds: float64(maxSilence)})
	return storage.Alert{ID: ce.ID, Type: TypeCoverageMissing, Time: time.Unix(at, 0).UTC(), Key: ce.Subject, Payload: ce.JSON(),
		Tenant: tenant, Source: source}
}

func rfc3339(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC3339) }
