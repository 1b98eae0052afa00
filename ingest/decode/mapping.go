package decode

import (
	"fmt"
	"regexp"
)

// Mapping rules a topic may add to where its tenant and source come from
// (FieldConfig): a static tenant (fixed_tenant; fixed_source for the
// source), and a regular expression per name (tenant_pattern,
// source_pattern) that the resolved name must match and whose first
// capture group, if it has one, becomes the name — a customer out of a
// hostname ("^([a-z0-9]+)-"), a product out of a tag. A name that does not
// match is rejected (bad_tenant, bad_source), never passed on unmapped.
type mapping struct {
	fixedTenant            []byte
	tenantRE, sourceRE     *regexp.Regexp
	tenantExpr, sourceExpr string
}

func newMapping(c FieldConfig) (mapping, error) {
	m := mapping{tenantExpr: c.TenantPattern, sourceExpr: c.SourcePattern}
	if c.FixedTenant != "" {
		m.fixedTenant = []byte(c.FixedTenant)
	}
	var err error
	if c.TenantPattern != "" {
		if m.tenantRE, err = regexp.Compile(c.TenantPattern); err != nil {
			return m, fmt.Errorf("ingest: fields: tenant_pattern: %w", err)
		}
	}
	if c.SourcePattern != "" {
		if m.sourceRE, err = regexp.Compile(c.SourcePattern); err != nil {
			return m, fmt.Errorf("ingest: fields: source_pattern: %w", err)
		}
	}
	return m, nil
}

// mapNames maps a record's resolved names; the results alias them.
func (d *Decoder) mapNames(tenant, source []byte) ([]byte, []byte, Reason, string) {
	m := &d.mapping
	if m.fixedTenant != nil {
		tenant = m.fixedTenant
	}
	var ok bool
	if m.tenantRE != nil {
		if tenant, ok = capture(m.tenantRE, tenant); !ok {
			return nil, nil, ReasonBadTenant, "tenant " + excerpt(tenant) + " does not match tenant_pattern " + excerpt([]byte(m.tenantExpr))
		}
	}
	if m.sourceRE != nil {
		if source, ok = capture(m.sourceRE, source); !ok {
			return nil, nil, ReasonBadSource, "source " + excerpt(source) + " does not match source_pattern " + excerpt([]byte(m.sourceExpr))
		}
	}
	if why := checkName(tenant, d.maxName); why != "" {
		return nil, nil, ReasonBadTenant, "tenant mapped to " + excerpt(tenant) + " " + why
	}
	if why := checkName(source, d.maxName); why != "" {
		return nil, nil, ReasonBadSource, "source mapped to " + excerpt(source) + " " + why
	}
	return tenant, source, "", ""
}

// capture returns re's first capture group in b (its whole match without
// groups); false if b does not match or the group is empty.
func capture(re *regexp.Regexp, b []byte) ([]byte, bool) {
	loc := re.FindSubmatchIndex(b)
	if loc == nil {
		return b, false
	}
	if len(loc) >= 4 && loc[2] >= 0 {
		return b[loc[2]:loc[3]], loc[3] > loc[2]
	}
	return b[loc[0]:loc[1]], loc[1] > loc[0]
}

// active reports whether any rule is set (most topics: none, and the
// decoders skip mapNames).
func (m *mapping) active() bool {
	return m.fixedTenant != nil || m.tenantRE != nil || m.sourceRE != nil
}
