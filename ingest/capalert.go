package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gapwatch/gapwatch/detect"
	"github.com/gapwatch/gapwatch/detect/live"
	"github.com/gapwatch/gapwatch/storage"
)

// Stream caps page the operator: a forger who writes to an input topic can
// make up tenants until the caps refuse real new streams, and a gauge nobody
// watches is not enough. When a tenant is first refused a stream by a cap, and
// when the cap clears, ingest publishes an io.gapwatch.pipeline.degraded
// CloudEvent to the alert topic (key "pipeline"), rate-limited so that a
// million forged tenant names make a handful of alerts, not a million:
//
//   - at most one alert per tenant, cap and state in an hour of arrival time;
//   - at most capTenantAlerts alerts naming one tenant's own cap in an hour;
//     beyond that one summary alert for the hour (tenant "") lists a sample
//     of capSample tenants and their count;
//   - the global cap (max_streams, less the priority tenants' reserve for the
//     others) makes one alert in an hour, with a sample and the count of the
//     tenants it refused by the time the alert is published.
//
// The id is a hash of the type, state, tenant ("" for the global cap and the
// summaries), cap and hour, so a replay after a restart gives the same ids:
// delivery is at least once, consumers dedupe by id.

// Caps named in the alerts.
const (
	CapPerTenant = "per_tenant" // max_streams_per_tenant
	CapGlobal    = "global"     // max_streams (less the reserve for tenants that are not priority tenants)
)

// States of the cap alerts (data.state).
const (
	StateStreamCap        = "stream_cap"
	StateStreamCapCleared = "stream_cap_cleared"
)

const (
	// capTenantAlerts bounds the alerts naming one tenant's cap in an hour.
	capTenantAlerts = 10
	// capSample bounds the tenants listed in one alert.
	capSample = 10
	// capRetained bounds the alerts kept for publication (failed ones retried).
	capRetained = 100
	// CapAlertSource is the CloudEvents source of ingest's alerts.
	CapAlertSource = "/gapwatch/ingest"
)

// capEvent is a change of a tenant's standing with a cap, as Streams sees it
// (under its lock): refused first since its last admission, or admitted again.
type capEvent struct {
	tenant  string
	global  bool  // the global cap (else the tenant's own)
	cleared bool  // admitted again (else refused)
	at      int64 // arrival bucket, Unix seconds
}

// capData is the data of a cap alert, like the detector's pipeline alerts.
type capData struct {
	State   string   `json:"state"` // stream_cap, stream_cap_cleared
	Reason  string   `json:"reason"`
	Cap     string   `json:"cap"` // per_tenant, global
	Limit   int      `json:"limit"`
	Tenant  string   `json:"tenant,omitempty"`  // the tenant; the first one for the global cap and summaries
	Tenants []string `json:"tenants,omitempty"` // a sample, for the global cap and summaries
	Count   int      `json:"tenants_count"`     // tenants refused (or cleared) this hour by the time of publication
	Hour    string   `json:"hour"`              // the hour of arrival time the alert stands for
}

// capSlot is what one alert an hour is allowed for.
type capSlot struct {
	tenant string // "" for the global cap and the summaries
	cap    string
	state  string
}

// capAlert is an alert waiting for publication; refusals of the same hour
// may still join its sample.
type capAlert struct {
	slot capSlot
	hour int64
	at   int64
	data capData
}

// capAlerts decides which cap events become alerts. Safe for concurrent use;
// observe is called under Streams' lock and takes little time.
type capAlerts struct {
	max, perTenant int

	mu          sync.Mutex
	hour        int64                 // the newest hour of arrival time seen
	sent        map[capSlot]int64     // slot → hour of its last alert (entries of this hour only)
	open        map[capSlot]*capAlert // unpublished alerts that refusals may still join
	tenantSent  int                   // alerts naming a tenant's own cap this hour
	paged       map[string]bool       // tenants paged at their own cap and not cleared since
	globalPaged bool
	pending     []*capAlert
	suppressed  int // events that made no alert (rate limit), for the metric
}

func newCapAlerts(max, perTenant int) *capAlerts {
	return &capAlerts{max: max, perTenant: perTenant, sent: map[capSlot]int64{}, open: map[capSlot]*capAlert{}, paged: map[string]bool{}}
}

// observe takes one cap event.
func (c *capAlerts) observe(ev capEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := ev.at / 3600; h > c.hour {
		c.hour, c.tenantSent = h, 0
		clear(c.sent)
		clear(c.open)
	}
	state := StateStreamCap
	if ev.cleared {
		state = StateStreamCapCleared
	}
	kind, limit := CapPerTenant, c.perTenant
	if ev.global {
		kind, limit = CapGlobal, c.max
	}
	switch {
	case ev.global && ev.cleared && !c.globalPaged:
		return // nobody was told it was reached
	case !ev.global && ev.cleared && !c.paged[ev.tenant]:
		return
	}
	slot := capSlot{cap: kind, state: state}
	if !ev.global {
		own := capSlot{ev.tenant, kind, state}
		if _, ok := c.sent[own]; ok {
			c.suppressed++
			return
		}
		if c.tenantSent < capTenantAlerts {
			slot = own
		}
	}
	if ev.global {
		c.globalPaged = !ev.cleared
	} else if ev.cleared {
		delete(c.paged, ev.tenant)
	} else if slot.tenant != "" && len(c.paged) < capRetained*capTenantAlerts {
		c.paged[ev.tenant] = true
	}
	if _, ok := c.sent[slot]; ok { // the global cap's or the summary's alert of this hour
		if a := c.open[slot]; a != nil {
			a.data.Count++
			if len(a.data.Tenants) < capSample {
				a.data.Tenants = append(a.data.Tenants, ev.tenant)
			}
			return
		}
		c.suppressed++
		return
	}
	c.sent[slot] = c.hour
	if slot.tenant != "" {
		c.tenantSent++
	}
	a := &capAlert{slot: slot, hour: c.hour, at: ev.at, data: capData{State: state, Cap: kind, Limit: limit, Tenant: ev.tenant, Count: 1,
		Hour: time.Unix(c.hour*3600, 0).UTC().Format(time.RFC3339)}}
	switch {
	case ev.global && !ev.cleared:
		a.data.Reason = fmt.Sprintf("the global stream cap (max_streams %d) refuses new streams: made-up tenants may be filling it", limit)
	case ev.global:
		a.data.Reason = "the global stream cap has room again"
	case slot.tenant == "" && !ev.cleared:
		a.data.Reason = fmt.Sprintf("more than %d tenants reached their stream cap (max_streams_per_tenant %d) this hour", capTenantAlerts, limit)
	case slot.tenant == "":
		a.data.Reason = "tenants have room under their stream cap again"
	case !ev.cleared:
		a.data.Reason = fmt.Sprintf("tenant %q reached its stream cap (max_streams_per_tenant %d): its new streams are refused", ev.tenant, limit)
	default:
		a.data.Reason = fmt.Sprintf("tenant %q has room under its stream cap again", ev.tenant)
	}
	if slot.tenant == "" {
		a.data.Tenants = []string{ev.tenant}
	}
	c.open[slot] = a
	if len(c.pending) < capRetained {
		c.pending = append(c.pending, a)
	} else {
		c.suppressed++
	}
}

// take returns the alerts due for publication, as published; the refusals
// after it make no further alert in their hour.
func (c *capAlerts) take() []storage.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]storage.Alert, 0, len(c.pending))
	for _, a := range c.pending {
		if c.open[a.slot] == a {
			delete(c.open, a.slot)
		}
		out = append(out, a.alert())
	}
	c.pending = nil
	return out
}

// takeSuppressed returns and resets the count of events that made no alert.
func (c *capAlerts) takeSuppressed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.suppressed
	c.suppressed = 0
	return n
}

// alert is a's CloudEvent, with its deterministic id.
func (a *capAlert) alert() storage.Alert {
	h := sha256.New()
	for _, s := range []string{live.TypePipelineDegraded, a.slot.state, a.slot.tenant, a.slot.cap} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(a.hour))
	h.Write(b[:])
	at := time.Unix(a.at, 0)
	ce := detect.NewEnvelope(live.TypePipelineDegraded, CapAlertSource, hex.EncodeToString(h.Sum(nil)[:16]), at, live.PipelineKey, a.data)
	return storage.Alert{ID: ce.ID, Type: ce.Type, Time: at.UTC(), Key: live.PipelineKey, Tenant: a.data.Tenant, Payload: ce.JSON()}
}

// capAlertLoop publishes the caps' alerts every FlushInterval until ctx ends,
// apart from counting: a failing alert topic never holds counting up.
func (in *Ingester) capAlertLoop(ctx context.Context) {
	t := time.NewTicker(in.cfg.FlushInterval)
	defer t.Stop()
	var p capPublication
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), sideRetryTimeout)
			in.publishCapAlerts(final, &p)
			cancel()
			if c, ok := in.alerts.(interface{ Close() error }); ok && in.ownAlerts {
				c.Close()
			}
			return
		case <-t.C:
			in.publishCapAlerts(ctx, &p)
		}
	}
}

// capPublication is the alert loop's state.
type capPublication struct {
	retry   []storage.Alert // failed, to try again
	failing time.Time       // when publishing retry first failed
	down    bool            // the alert topic is taken as down
	ensured bool            // the alert topic exists
}

// publishCapAlerts publishes the alerts due, and those that failed before,
// under the side topics' failure policy (sideGivesUp), like the dead letters.
func (in *Ingester) publishCapAlerts(ctx context.Context, p *capPublication) {
	if n := in.caps.takeSuppressed(); n > 0 {
		in.metrics.capAlertsSuppressed.Add(float64(n))
	}
	p.retry = append(p.retry, in.caps.take()...)
	if len(p.retry) == 0 {
		return
	}
	if n := len(p.retry) - capRetained; n > 0 { // keep the newest
		in.metrics.capAlertsDropped.Add(float64(n))
		p.retry = p.retry[n:]
	}
	wctx, cancel := context.WithTimeout(ctx, in.sideTimeout(p.down))
	defer cancel()
	err := error(nil)
	if t, ok := in.alerts.(interface{ EnsureTopic(context.Context) error }); ok && !p.ensured {
		err = t.EnsureTopic(wctx)
		p.ensured = err == nil
	}
	if err == nil {
		err = in.alerts.Publish(wctx, p.retry)
	}
	if err == nil {
		for _, a := range p.retry {
			var d struct {
				Data struct {
					State string `json:"state"`
				} `json:"data"`
			}
			_ = json.Unmarshal(a.Payload, &d) // our own JSON
			in.metrics.capAlerts.WithLabelValues(d.Data.State).Inc()
			in.log.Warn("stream cap alert published", "id", a.ID, "payload", string(a.Payload))
		}
		p.retry, p.failing = nil, time.Time{}
		if p.down {
			p.down = false
			in.log.Info("alert topic works again: stream cap alerts are published")
		}
		return
	}
	in.metrics.capAlertErrors.Inc()
	if !in.sideGivesUp(&p.failing, p.down) {
		in.log.Warn("publishing stream cap alerts failed; retrying", "alerts", len(p.retry), "err", err)
		return
	}
	in.metrics.capAlertsDropped.Add(float64(len(p.retry)))
	if !p.down {
		p.down = true
		in.log.Error("alert topic unusable: stream cap alerts are dropped (and counted) until it works again; counting goes on",
			"dropped", len(p.retry), "failing_for", time.Since(p.failing).Round(time.Second), "err", err)
	}
	p.retry, p.failing = nil, time.Time{}
}
