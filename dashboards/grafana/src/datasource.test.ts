import { CoreApp } from '@grafana/data';

import { installTemplateSrv, mockResources, newDataSource } from './testing';
import { GapwatchQuery } from './types';

beforeEach(installTemplateSrv);

describe('DataSource', () => {
  it('starts a new query as all gaps', () => {
    expect(newDataSource().getDefaultQuery(CoreApp.PanelEditor)).toEqual({ queryType: 'gaps', state: 'all' });
  });

  it('fills template variables into tenant and source only', () => {
    const query: GapwatchQuery = {
      refId: 'A',
      queryType: 'rates',
      tenant: '$tenant',
      source: '$source',
      clock: 'event',
    };
    expect(newDataSource().applyTemplateVariables(query, {})).toEqual({ ...query, tenant: 'acme', source: 'nginx' });
  });

  it('leaves empty tenant and source empty', () => {
    const query: GapwatchQuery = { refId: 'A', queryType: 'streams' };
    expect(newDataSource().applyTemplateVariables(query, {})).toEqual(query);
  });

  it('skips hidden queries', () => {
    const ds = newDataSource();
    expect(ds.filterQuery({ refId: 'A', hide: true })).toBe(false);
    expect(ds.filterQuery({ refId: 'A' })).toBe(true);
  });

  it('lists tenants for a variable', async () => {
    const ds = newDataSource();
    const getResource = mockResources(ds);
    await expect(ds.metricFindQuery('tenants')).resolves.toEqual([
      { text: 'acme', value: 'acme' },
      { text: 'globex', value: 'globex' },
    ]);
    expect(getResource).toHaveBeenCalledWith('tenants');
  });

  it('lists the sources of every selected tenant once', async () => {
    const ds = newDataSource();
    const getResource = mockResources(ds);
    const found = await ds.metricFindQuery('sources($tenants)');
    expect(found.map((v) => v.text)).toEqual(['auditd', 'nginx', 'syslog']);
    expect(getResource).toHaveBeenCalledWith('sources', { tenant: 'acme' });
    expect(getResource).toHaveBeenCalledWith('sources', { tenant: 'globex' });
  });

  it('asks for no sources without a tenant', async () => {
    const ds = newDataSource();
    const getResource = mockResources(ds);
    await expect(ds.getSources('')).resolves.toEqual([]);
    expect(getResource).not.toHaveBeenCalled();
  });

  it('rejects variable queries it does not know', async () => {
    const ds = newDataSource();
    mockResources(ds);
    await expect(ds.metricFindQuery('gaps')).rejects.toThrow(/tenants or sources/);
    await expect(ds.metricFindQuery('sources()')).rejects.toThrow(/needs a tenant/);
  });

  it('says so when a resource answers with something else than names', async () => {
    const ds = newDataSource();
    jest.spyOn(ds, 'getResource').mockResolvedValue([{ tenant: 'acme' }]);
    await expect(ds.getTenants()).rejects.toThrow(/list of names/);
  });
});
