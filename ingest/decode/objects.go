package decode

import "slices"

// Single-object envelopes: one JSON object per message whose tenant, source
// and time sit at fixed places of a schema (CONTRACT.md, "More envelopes"),
// told apart by keys only that schema has. Their paths are noted by the same
// walk as a plain event's: they share its top-level keys.
//
//   - ECS (Elastic Common Schema: Elastic Agent, Beats, Logstash ecs codec):
//     @timestamp, and ecs.version or data_stream. Tenant organization.id, else
//     cloud.account.id; source data_stream.dataset, else event.dataset; time
//     @timestamp.
//   - OCSF (Open Cybersecurity Schema Framework: AWS Security Lake, …):
//     class_uid and metadata. Tenant cloud.account.uid, else
//     metadata.tenant_uid; source metadata.product.name, else class_name;
//     time time (epoch milliseconds).
//   - Google Cloud Logging LogEntry: logName and resource. Tenant
//     resource.labels.project_id; source the log id after /logs/ in logName,
//     URL-decoded; time timestamp.
//   - Splunk HEC event (Fluent Bit, Vector, OTel Collector splunk_hec
//     exporters): event and sourcetype. Tenant fields.tenant, else index;
//     source sourcetype, else source; time time (epoch seconds).
//
// As in the array envelopes, tenant, source and time paths configured to
// something other than the defaults are tried first.
type objectFormat struct {
	name    Format
	markers [][]keyPath // the message is of this format when, for some row, every path of it is present
	spec    recordSpec
}

// initObjects sets up the single-object envelopes on the plain record's keys.
func (d *Decoder) initObjects(userTenant, userSource, userTime []string) {
	keys := &d.plain.keys
	mark := func(names ...string) []keyPath { return lookupsOf(keys, names) }
	spec := func(tenant, source, time []string) recordSpec {
		var s recordSpec
		s.tenant = newNameSpec(keys, "tenant", append(slices.Clone(userTenant), tenant...), nil)
		s.source = newNameSpec(keys, "source", append(slices.Clone(userSource), source...), nil)
		s.time = newTimeSpec(keys, append(slices.Clone(userTime), time...))
		return s
	}
	gcp := spec([]string{"resource.labels.project_id"}, nil, []string{"timestamp"})
	gcp.source.derived = &derivedName{field: "logName", key: keys.add("logName"), want: "/logs/ segment", fn: gcpLogID}
	gcp.source.missingMsg = "no source field among " + listPaths(append(gcp.source.paths, "logName"))
	d.objects = []objectFormat{
		{FormatECS, [][]keyPath{mark("@timestamp", "ecs.version"), mark("@timestamp", "data_stream")},
			spec([]string{"organization.id", "cloud.account.id"}, []string{"data_stream.dataset", "event.dataset"}, []string{"@timestamp"})},
		{FormatOCSF, [][]keyPath{mark("class_uid", "metadata")},
			spec([]string{"cloud.account.uid", "metadata.tenant_uid"}, []string{"metadata.product.name", "class_name"}, []string{"time"})},
		{FormatGCP, [][]keyPath{mark("logName", "resource")}, gcp},
		{FormatHEC, [][]keyPath{mark("event", "sourcetype")},
			spec([]string{"fields.tenant", "index"}, []string{"sourcetype", "source"}, []string{"time"})},
	}
	for i := range d.objects {
		d.objects[i].spec.time.layouts = d.plain.time.layouts
	}
}

// objectSpec returns the record spec of the message whose top level the
// walk noted: its topic's forced format's, the first single-object envelope
// whose markers are present, or the plain event's.
func (d *Decoder) objectSpec(b []byte) *recordSpec {
	for i := range d.objects {
		o := &d.objects[i]
		if d.format == o.name {
			return &o.spec
		}
		if d.format != FormatAuto {
			continue
		}
		for _, row := range o.markers {
			if d.hasAll(b, row) {
				return &o.spec
			}
		}
	}
	return &d.plain
}

// hasAll reports whether every marker path of row is present at the top level.
func (d *Decoder) hasAll(b []byte, row []keyPath) bool {
	for i := range row {
		if _, ok := d.lookup(b, d.notes.top, &row[i]); !ok {
			return false
		}
	}
	return true
}
