import { CoreApp, DataSourceInstanceSettings, MetricFindValue, ScopedVars } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { DEFAULT_QUERY_TYPE, GapwatchOptions, GapwatchQuery, queryDefaults } from './types';

/**
 * The gapwatch datasource. Queries, health checks and the tenant and source lists
 * run in the Go backend; the frontend fills in template variables and offers the
 * lists to the query editor and to dashboard variables.
 */
export class DataSource extends DataSourceWithBackend<GapwatchQuery, GapwatchOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<GapwatchOptions>) {
    super(instanceSettings);
    // Annotations with the query editor: a gaps query marks each gap on a panel
    // (started_at to ended_at), as the tenant dashboard does.
    this.annotations = {};
  }

  getDefaultQuery(_: CoreApp): Partial<GapwatchQuery> {
    return queryDefaults(DEFAULT_QUERY_TYPE);
  }

  applyTemplateVariables(query: GapwatchQuery, scopedVars: ScopedVars): GapwatchQuery {
    const templateSrv = getTemplateSrv();
    return {
      ...query,
      tenant: query.tenant ? templateSrv.replace(query.tenant, scopedVars) : query.tenant,
      source: query.source ? templateSrv.replace(query.source, scopedVars) : query.source,
    };
  }

  filterQuery(query: GapwatchQuery): boolean {
    return !query.hide;
  }

  /** The tenants the API token may see, from the backend's `tenants` resource. */
  async getTenants(): Promise<string[]> {
    return names(await this.getResource('tenants'), 'tenants');
  }

  /**
   * The sources of a tenant, which may be a variable such as `$tenant`; with several
   * tenants selected, the sources of all of them, each once.
   */
  async getSources(tenant: string, scopedVars?: ScopedVars): Promise<string[]> {
    const tenants = getTemplateSrv()
      .replace(tenant, scopedVars, 'csv')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    const lists = await Promise.all(
      tenants.map(async (t) => names(await this.getResource('sources', { tenant: t }), 'sources'))
    );
    return Array.from(new Set(lists.flat())).sort();
  }

  /**
   * Dashboard variables: `tenants` lists the tenants, `sources(TENANT)` the sources of
   * TENANT (see getSources).
   */
  async metricFindQuery(query: string, options?: { scopedVars?: ScopedVars }): Promise<MetricFindValue[]> {
    const text = (query ?? '').trim();
    if (text === 'tenants') {
      return (await this.getTenants()).map((name) => ({ text: name, value: name }));
    }
    const match = /^sources\s*\(\s*(.*?)\s*\)$/.exec(text);
    if (!match) {
      throw new Error(`unknown variable query "${text}": use tenants or sources($tenant)`);
    }
    if (!match[1]) {
      throw new Error('sources() needs a tenant, e.g. sources($tenant)');
    }
    const sources = await this.getSources(match[1], options?.scopedVars);
    return sources.map((name) => ({ text: name, value: name }));
  }
}

function names(body: unknown, what: string): string[] {
  if (!Array.isArray(body) || body.some((v) => typeof v !== 'string')) {
    throw new Error(`the ${what} resource did not answer with a list of names`);
  }
  return body;
}
