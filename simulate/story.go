package simulate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// The story's sources, in their real formats.
const (
	SourceSignIn   = "SignInLogs"          // Entra ID sign-ins: Azure Monitor export, {"records":[...]}
	SourceAudit    = "AuditLogs"           // Entra ID directory audit: the same export
	SourcePurview  = "PurviewAudit"        // data-governance audit rows (Purview-like), plain JSON
	SourcePremium  = "PurviewAuditPremium" // the premium audit category (MailItemsAccessed and the like)
	SourceFirewall = "firewall"            // plain JSON through three syslog collectors
	SourceEDR      = "edr"                 // endpoint detection and response, plain JSON
)

// PremiumLabel is the label of the tenants with a premium audit licence: they
// must send SourcePremium.
const PremiumLabel = "audit-premium"

// StoryMinTenants is the fewest tenants the story can be told with.
const StoryMinTenants = 6

// BugDays is how many days the monitoring-agent bug lasted in September
// 2024; the story plays each as a minute.
const BugDays = 17

// What happens to a stream in the story (Story.Roles).
const (
	RoleAgentBug    = "agent bug"
	RoleCollector   = "collector 2 of 3 down"
	RoleMaintenance = "planned maintenance"
	RoleDelay       = "ingestion delay"
	RoleNeverSent   = "premium audit never sent"
	RoleYours       = "your incident (--incident)"
)

// Story is the demo's replay of September 2024, when a bug in a cloud
// provider's monitoring agent silently lost customers' security logs for 17
// days and nobody noticed for weeks. Times are offsets from the generator's
// start; the agent bug starts on a minute boundary, so that busy streams are
// flagged within their first empty minute.
type Story struct {
	// BugAt is when the agent bug starts; it lasts BugDays minutes.
	BugAt time.Duration
	// BugTenants are the organisations whose SignInLogs, AuditLogs and
	// PurviewAudit the bug stops.
	BugTenants []string
	// Roles says what happens to each affected stream, by tenant and source.
	Roles map[[2]string]string
	// Maintenance is a planned window (From, To after the start) on one
	// stream, which stops inside it: its gap must be planned, not alerted.
	Maintenance struct {
		Tenant, Source string
		From, To       time.Duration
	}
	// Labels gives tenants labels for the coverage policy: PremiumLabel
	// tenants must send SourcePremium; NeverSent is one that never does.
	Labels    map[string][]string
	NeverSent [2]string
	// Beats are the story's moments in time order, to be told once each.
	Beats     []Beat
	incidents []Incident
	orgs      map[string]string // tenant id → organisation
}

// Beat is a moment of the story.
type Beat struct {
	At   time.Duration
	Text string
}

var storyOrgs = []string{"contoso", "fabrikam", "adatum", "northwind", "woodgrove", "tailspin", "litware", "proseware",
	"wingtip", "fourthcoffee", "alpineski", "blueyonder", "cohovineyard", "lucernepub", "margiestravel", "relecloud",
	"southridge", "treyresearch", "wideworld", "adventureworks", "humongous", "graphicdesign", "cpandl", "lamna",
	"munson", "nodpublishers", "fineartschool", "consolidated", "datum", "bellows"}

// The story's casting, by tenant index.
const (
	castCollector   = 0 // the biggest tenant: one firewall collector of three fails
	castDelay       = 2 // its EDR shipper falls further and further behind
	castMaintenance = 4 // its firewall stops in a planned maintenance window
	castNeverSent   = 5 // licensed for premium audit, never sends it
)

// hitByBug reports whether the agent bug hits tenant i: two in five.
func hitByBug(i int) bool { return i%5 == 1 || i%5 == 3 }

// layOutStory lays out the story's tenants (see Story) and scripts its incidents.
func (g *Generator) layOutStory() {
	st := Story{Roles: map[[2]string]string{}, Labels: map[string][]string{}, orgs: map[string]string{}}
	// The agent bug starts on the first minute boundary at least 10 s in:
	// time for the detector to rebuild its baselines from the history.
	lead := g.start.Add(10 * time.Second)
	bug := lead.Truncate(time.Minute)
	if bug.Before(lead) {
		bug = bug.Add(time.Minute)
	}
	st.BugAt = bug.Sub(g.start)
	bugFor := BugDays * time.Minute
	var weights []float64
	for i := range g.cfg.Tenants {
		org := fmt.Sprintf("tenant-%03d", i)
		if i < len(storyOrgs) {
			org = storyOrgs[i]
		}
		size := math.Min(math.Max(math.Exp(0.7*g.rng.NormFloat64()), 0.25), 4)
		if i == castCollector {
			size = 4
		}
		entra := azureTenant(org)
		st.orgs[org], st.orgs[entra] = org, org
		add := func(tenant, source string, f format, w, daily float64, collectors int) {
			g.streams = append(g.streams, Stream{Tenant: tenant, Source: source, Org: org, format: f, daily: daily, collectors: collectors})
			weights = append(weights, size*w)
		}
		add(entra, SourceSignIn, azure, 3, 0.6, 0)
		add(entra, SourceAudit, azure, 0.6, 0.6, 0)
		premium := i == castNeverSent || g.rng.Float64() < 0.3
		if premium || g.rng.Float64() < 0.6 {
			add(entra, SourcePurview, purview, 1, 0.6, 0)
		}
		if premium {
			st.Labels[entra] = []string{PremiumLabel}
			if i == castNeverSent {
				st.NeverSent = [2]string{entra, SourcePremium}
				st.Roles[st.NeverSent] = RoleNeverSent
			} else {
				add(entra, SourcePremium, purview, 0.4, 0.6, 0)
			}
		}
		if i == castCollector || i == castMaintenance || g.rng.Float64() < 0.8 {
			add(org, SourceFirewall, plainFirewall, 4, 0.3, 3)
		}
		if i == castDelay || g.rng.Float64() < 0.7 {
			add(org, SourceEDR, plainEDR, 2, 0.3, 0)
		}
		switch {
		case hitByBug(i):
			st.BugTenants = append(st.BugTenants, org)
			for _, src := range []string{SourceSignIn, SourceAudit, SourcePurview} {
				st.incidents = append(st.incidents, Incident{Tenant: entra, Source: src, After: st.BugAt, For: bugFor, Loss: 1})
				st.Roles[[2]string{entra, src}] = RoleAgentBug
			}
		case i == castCollector:
			st.incidents = append(st.incidents, Incident{Tenant: org, Source: SourceFirewall, After: st.BugAt, For: 20 * time.Minute, Loss: 1, Collector: 2})
			st.Roles[[2]string{org, SourceFirewall}] = RoleCollector
			st.Beats = append(st.Beats, Beat{st.BugAt, fmt.Sprintf("%s's firewall: collector 2 of 3, the busiest, fails (half its events lost, for 20 min)", org)})
		case i == castDelay:
			st.incidents = append(st.incidents, Incident{Tenant: org, Source: SourceEDR, For: 30 * time.Minute, DelayPerMinute: 15 * time.Second})
			st.Roles[[2]string{org, SourceEDR}] = RoleDelay
			st.Beats = append(st.Beats, Beat{0, fmt.Sprintf("%s's EDR shipper falls behind: 15 s more delay every minute (nothing lost, all late)", org)})
		case i == castMaintenance:
			st.incidents = append(st.incidents, Incident{Tenant: org, Source: SourceFirewall, After: st.BugAt, For: 10 * time.Minute, Loss: 1})
			st.Roles[[2]string{org, SourceFirewall}] = RoleMaintenance
			st.Maintenance.Tenant, st.Maintenance.Source = org, SourceFirewall
			st.Maintenance.From, st.Maintenance.To = 0, st.BugAt+15*time.Minute
			st.Beats = append(st.Beats, Beat{st.BugAt, fmt.Sprintf("%s's firewall stops for its planned maintenance (a silence was set at start)", org)})
		case i == castNeverSent:
			st.Beats = append(st.Beats, Beat{0, fmt.Sprintf("%s (Entra tenant %s) is licensed for premium audit but has never sent %s", org, entra, SourcePremium)})
		}
	}
	for _, src := range []string{SourceSignIn, SourceAudit, SourcePurview} { // a bug tenant without Purview has no such stream
		for _, org := range st.BugTenants {
			k := [2]string{azureTenant(org), src}
			if !g.hasStream(k) {
				delete(st.Roles, k)
			}
		}
	}
	st.Beats = append(st.Beats,
		Beat{st.BugAt, fmt.Sprintf("a monitoring-agent bug silently stops the SignInLogs, AuditLogs and PurviewAudit of %d tenants (no error anywhere)", len(st.BugTenants))},
		Beat{st.BugAt + bugFor, fmt.Sprintf("the agent is fixed after %d days (minutes): logs flow again, the lost ones never come back; gaps resolve after 15 min of normal traffic", BugDays)})
	for _, in := range g.cfg.Incidents { // the user's own
		for _, s := range g.streams {
			k := [2]string{s.Tenant, s.Source}
			if (in.Tenant == s.Tenant || in.Tenant == s.Org) && in.Source == s.Source && st.Roles[k] == "" {
				st.Roles[k] = RoleYours
			}
		}
	}
	slices.SortStableFunc(st.Beats, func(a, b Beat) int { return cmp.Compare(a.At, b.At) })
	g.story = st
	g.cfg.Incidents = append(st.incidents, g.cfg.Incidents...)
	g.spread(weights)
}

func (g *Generator) hasStream(k [2]string) bool {
	for _, s := range g.streams {
		if s.Tenant == k[0] && s.Source == k[1] {
			return true
		}
	}
	return false
}

// Story returns the story g tells (zero unless Config.Story).
func (g *Generator) Story() Story { return g.story }

// Org returns the organisation behind a tenant id of the story, or the id.
func (st Story) Org(tenant string) string {
	if org, ok := st.orgs[tenant]; ok {
		return org
	}
	return tenant
}

// Phase says in a few words where the story is at elapsed.
func (st Story) Phase(elapsed time.Duration) string {
	switch bug := elapsed - st.BugAt; {
	case bug < 0:
		return "normal traffic, baselines warm from history"
	case bug < BugDays*time.Minute:
		return fmt.Sprintf("agent bug, day %d of %d: %d tenants' SignInLogs/AuditLogs/PurviewAudit lost", 1+int(bug/time.Minute), BugDays, len(st.BugTenants))
	default:
		return "agent fixed; the lost logs stay lost"
	}
}

// purviewOps are audit operations by source: standard, and the premium
// category that only licensed tenants receive.
var purviewOps = map[string][][2]string{
	SourcePurview: {{"SharePointFileOperation", "FileAccessed"}, {"SharePointFileOperation", "FileModified"},
		{"ExchangeAdmin", "Set-Mailbox"}, {"MicrosoftTeams", "MemberAdded"}, {"DLPEndpoint", "FileCopiedToRemovableMedia"}},
	SourcePremium: {{"ExchangeItemAggregated", "MailItemsAccessed"}, {"ExchangeItem", "Send"},
		{"SearchQueryInitiated", "SearchQueryInitiatedExchange"}},
}

// renderPurview writes one data-governance audit record as a Log Analytics
// row exported to Kafka: the unified audit log's fields (RecordType,
// Operation, Workload, UserId, ObjectId) with TenantId, Type (the category)
// and TimeGenerated.
func (g *Generator) renderPurview(s *Stream, arrival time.Time, delay time.Duration) []byte {
	ops := purviewOps[s.Source]
	if ops == nil {
		ops = purviewOps[SourcePurview]
	}
	op := ops[g.rng.IntN(len(ops))]
	workload := map[string]string{"SharePointFileOperation": "SharePoint", "ExchangeAdmin": "Exchange", "MicrosoftTeams": "MicrosoftTeams",
		"DLPEndpoint": "Endpoint", "ExchangeItemAggregated": "Exchange", "ExchangeItem": "Exchange", "SearchQueryInitiated": "Exchange"}[op[0]]
	return fmt.Appendf(nil, `{"TenantId":%q,"TimeGenerated":%q,"Type":%q,"Id":"%08x-%04x-4%03x-8%03x-%012x","RecordType":%q,"Operation":%q,"Workload":%q,"OrganizationId":%q,"UserId":"user%d@%s.example","ClientIP":"10.%d.%d.%d","ObjectId":"https://%s.sharepoint.example/sites/finance/doc%d.xlsx","ResultStatus":"Succeeded"}`,
		s.Tenant, g.eventTime(arrival, delay).Format("2006-01-02T15:04:05.0000000Z"), s.Source,
		g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12), g.rng.IntN(1<<12), g.seq, op[0], op[1], workload, s.Tenant,
		g.rng.IntN(500), s.Org, g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254), s.Org, g.rng.IntN(1000))
}
