import React from 'react';
import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';

import { installTemplateSrv, mockResources, newDataSource } from '../testing';
import { GapwatchQuery } from '../types';
import { QueryEditor } from './QueryEditor';

beforeEach(installTemplateSrv);

/** Renders the editor and lets its resource calls settle. */
async function setup(query: GapwatchQuery, getResource?: jest.Mock) {
  const datasource = newDataSource();
  const resources = getResource
    ? jest.spyOn(datasource, 'getResource').mockImplementation(getResource)
    : mockResources(datasource);
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  const utils = render(
    <QueryEditor datasource={datasource} query={query} onChange={onChange} onRunQuery={onRunQuery} />
  );
  await settle();
  return { ...utils, datasource, resources, onChange, onRunQuery };
}

async function settle() {
  await act(async () => {});
}

/** Opens a Grafana Select by its input id and waits for an option to show. */
async function openSelect(inputId: string, option: string) {
  const input = document.getElementById(inputId) as HTMLInputElement;
  fireEvent.keyDown(input, { key: 'ArrowDown' });
  return screen.findByText(option);
}

describe('QueryEditor', () => {
  it('shows the query types, the pickers and the gap state for a gaps query', async () => {
    await setup({ refId: 'A', queryType: 'gaps', state: 'open' });
    for (const type of ['Gaps', 'Coverage', 'Rates', 'Streams']) {
      expect(screen.getByRole('radio', { name: type })).toBeInTheDocument();
    }
    expect(screen.getByRole('radio', { name: 'Gaps' })).toBeChecked();
    expect(screen.getByRole('radio', { name: 'Open' })).toBeChecked();
    expect(screen.queryByRole('radio', { name: 'Arrival' })).not.toBeInTheDocument();
    expect(document.getElementById('gapwatch-tenant')).toBeInTheDocument();
    expect(document.getElementById('gapwatch-source')).toBeInTheDocument();
    await waitFor(() => expect(screen.getAllByText('all tenants')).toHaveLength(1));
  });

  it('shows the clock and not the state for a rates query', async () => {
    await setup({ refId: 'A', queryType: 'rates', tenant: 'acme', source: 'nginx', clock: 'event' });
    expect(screen.getByRole('radio', { name: 'Event' })).toBeChecked();
    expect(screen.queryByRole('radio', { name: 'Open' })).not.toBeInTheDocument();
    expect(screen.queryByText('Rates are drawn for one stream')).not.toBeInTheDocument();
    await screen.findByText('nginx');
  });

  it('shows neither state nor clock for coverage and streams', async () => {
    for (const queryType of ['coverage', 'streams'] as const) {
      const { unmount } = await setup({ refId: 'A', queryType });
      expect(screen.queryByRole('radio', { name: 'Open' })).not.toBeInTheDocument();
      expect(screen.queryByRole('radio', { name: 'Arrival' })).not.toBeInTheDocument();
      unmount();
    }
  });

  it('treats a query without a type as gaps', async () => {
    await setup({ refId: 'A' });
    expect(screen.getByRole('radio', { name: 'Gaps' })).toBeChecked();
    expect(screen.getByRole('radio', { name: 'All' })).toBeChecked();
  });

  it('switches the query type, takes that type defaults and drops the other type fields', async () => {
    const { onChange, onRunQuery } = await setup({ refId: 'A', queryType: 'gaps', tenant: 'acme', state: 'open' });
    fireEvent.click(screen.getByRole('radio', { name: 'Rates' }));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'rates', tenant: 'acme', clock: 'arrival' });
    fireEvent.click(screen.getByRole('radio', { name: 'Streams' }));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'streams', tenant: 'acme' });
    expect(onRunQuery).toHaveBeenCalledTimes(2);
  });

  it('changes the gap state and the clock', async () => {
    const gaps = await setup({ refId: 'A', queryType: 'gaps', state: 'all' });
    fireEvent.click(screen.getByRole('radio', { name: 'Resolved' }));
    expect(gaps.onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'gaps', state: 'resolved' });
    gaps.unmount();
    const rates = await setup({ refId: 'A', queryType: 'rates', clock: 'arrival' });
    fireEvent.click(screen.getByRole('radio', { name: 'Event' }));
    expect(rates.onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'rates', clock: 'event' });
  });

  it('hints that rates need a tenant and a source', async () => {
    const { rerender, datasource } = await setup({ refId: 'A', queryType: 'rates', tenant: 'acme' });
    expect(screen.getByText('Rates are drawn for one stream')).toBeInTheDocument();
    const props = { datasource, onChange: jest.fn(), onRunQuery: jest.fn() };
    rerender(<QueryEditor {...props} query={{ refId: 'A', queryType: 'rates', source: 'nginx' }} />);
    await settle();
    expect(screen.getByText('Rates are drawn for one stream')).toBeInTheDocument();
    rerender(
      <QueryEditor {...props} query={{ refId: 'A', queryType: 'rates', tenant: '$tenant', source: '$source' }} />
    );
    await settle();
    expect(screen.queryByText('Rates are drawn for one stream')).not.toBeInTheDocument();
  });

  it('hints that an explanation needs a tenant and a source, and shows neither state nor clock', async () => {
    const { rerender, datasource } = await setup({ refId: 'A', queryType: 'explain', tenant: 'acme' });
    expect(screen.getByText('An explanation replays one stream')).toBeInTheDocument();
    expect(screen.queryByRole('radio', { name: 'Event' })).not.toBeInTheDocument();
    expect(screen.queryByRole('radio', { name: 'Resolved' })).not.toBeInTheDocument();
    const props = { datasource, onChange: jest.fn(), onRunQuery: jest.fn() };
    rerender(<QueryEditor {...props} query={{ refId: 'A', queryType: 'explain', tenant: 'acme', source: 'nginx' }} />);
    await settle();
    expect(screen.queryByText('An explanation replays one stream')).not.toBeInTheDocument();
  });

  it('lists tenants from the backend and picks one, dropping the old source', async () => {
    const { resources, onChange, onRunQuery } = await setup({
      refId: 'A',
      queryType: 'streams',
      tenant: 'acme',
      source: 'nginx',
    });
    expect(resources).toHaveBeenCalledWith('tenants');
    fireEvent.click(await openSelect('gapwatch-tenant', 'globex'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'streams', tenant: 'globex', source: '' });
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('offers dashboard variables as tenants', async () => {
    const { onChange } = await setup({ refId: 'A', queryType: 'coverage' });
    fireEvent.click(await openSelect('gapwatch-tenant', '$tenants'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'coverage', tenant: '$tenants', source: '' });
  });

  it('takes a typed tenant', async () => {
    const { onChange } = await setup({ refId: 'A', queryType: 'coverage' });
    const input = document.getElementById('gapwatch-tenant') as HTMLInputElement;
    await screen.findByText('all tenants');
    fireEvent.change(input, { target: { value: 'initech' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'coverage', tenant: 'initech', source: '' });
  });

  it('lists the sources of the chosen tenant, with its variable filled in', async () => {
    const { resources, onChange } = await setup({ refId: 'A', queryType: 'gaps', state: 'all', tenant: '$tenant' });
    await waitFor(() => expect(resources).toHaveBeenCalledWith('sources', { tenant: 'acme' }));
    fireEvent.click(await openSelect('gapwatch-source', 'syslog'));
    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'A',
      queryType: 'gaps',
      state: 'all',
      tenant: '$tenant',
      source: 'syslog',
    });
  });

  it('asks for no sources while no tenant is chosen', async () => {
    const { resources } = await setup({ refId: 'A', queryType: 'gaps' });
    await waitFor(() => expect(resources).toHaveBeenCalledWith('tenants'));
    expect(resources).not.toHaveBeenCalledWith('sources', expect.anything());
  });

  it('clears the source with Backspace', async () => {
    const { onChange } = await setup({ refId: 'A', queryType: 'streams', tenant: 'acme', source: 'nginx' });
    await screen.findByText('nginx');
    // The clear icon is an SVG that the scaffold's jest mock renders without handlers;
    // Backspace in the empty input clears the same way.
    fireEvent.keyDown(document.getElementById('gapwatch-source')!, { key: 'Backspace' });
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'streams', tenant: 'acme', source: '' });
  });

  it('says why the tenants could not be listed', async () => {
    const failing = jest.fn().mockRejectedValue({ status: 401, data: { message: 'unknown API token' } });
    await setup({ refId: 'A', queryType: 'gaps' }, failing);
    expect(await screen.findByText('could not list: unknown API token')).toBeInTheDocument();
  });
});
