import { DataSourceInstanceSettings, DataSourcePluginMeta } from '@grafana/data';
import { TemplateSrv, setTemplateSrv } from '@grafana/runtime';

import { DataSource } from './datasource';
import { GapwatchOptions } from './types';

/** Test helpers: a datasource whose backend resources answer from a fixed map. */

export const TENANTS = ['acme', 'globex'];
export const SOURCES: Record<string, string[]> = {
  acme: ['nginx', 'syslog'],
  globex: ['auditd', 'nginx'],
};

/** Variables as a dashboard would have them: $tenant is acme, $tenants is acme and globex. */
const VARIABLES: Record<string, string[]> = {
  tenant: ['acme'],
  tenants: ['acme', 'globex'],
  source: ['nginx'],
};

export function installTemplateSrv(): void {
  const srv: Partial<TemplateSrv> = {
    getVariables: () => Object.keys(VARIABLES).map((name) => ({ name }) as ReturnType<TemplateSrv['getVariables']>[0]),
    replace: (target?: string, _scopedVars?: unknown, format?: string | Function) =>
      (target ?? '').replace(/\$(\w+)/g, (whole, name: string) => {
        const values = VARIABLES[name];
        if (!values) {
          return whole;
        }
        return format === 'csv' ? values.join(',') : values.length === 1 ? values[0] : `{${values.join(',')}}`;
      }),
  };
  setTemplateSrv(srv as TemplateSrv);
}

export function newDataSource(): DataSource {
  const settings: DataSourceInstanceSettings<GapwatchOptions> = {
    id: 1,
    uid: 'gapwatch-test',
    type: 'gapwatch-coverage-datasource',
    name: 'gapwatch',
    meta: { id: 'gapwatch-coverage-datasource' } as DataSourcePluginMeta,
    jsonData: {},
    access: 'proxy',
    readOnly: false,
  };
  return new DataSource(settings);
}

/** Spies on getResource so that tenants and sources come from TENANTS and SOURCES. */
export function mockResources(ds: DataSource) {
  return jest.spyOn(ds, 'getResource').mockImplementation(async (path: string, params?: unknown) => {
    if (path === 'tenants') {
      return TENANTS;
    }
    if (path === 'sources') {
      const tenant = (params as { tenant?: string } | undefined)?.tenant ?? '';
      return SOURCES[tenant] ?? [];
    }
    throw new Error(`unexpected resource ${path}`);
  });
}
