import React, { useEffect, useMemo, useState } from 'react';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import { Alert, InlineField, InlineFieldRow, RadioButtonGroup, Select } from '@grafana/ui';

import { DataSource } from '../datasource';
import {
  CLOCKS,
  Clock,
  DEFAULT_QUERY_TYPE,
  GAP_STATES,
  GapState,
  GapwatchOptions,
  GapwatchQuery,
  QUERY_TYPES,
  QueryType,
  missingStream,
  queryDefaults,
} from '../types';

type Props = QueryEditorProps<DataSource, GapwatchQuery, GapwatchOptions>;

const LABEL_WIDTH = 12;

/**
 * Picks a query type, a tenant and a source (from the backend's lists, a dashboard
 * variable or a typed name), and the state of gaps or the clock of rates.
 */
export function QueryEditor({ datasource, query, onChange, onRunQuery }: Props) {
  const queryType = query.queryType ?? DEFAULT_QUERY_TYPE;
  const tenant = query.tenant ?? '';
  const source = query.source ?? '';

  const variables = useMemo(
    () =>
      getTemplateSrv()
        .getVariables()
        .map((v) => `$${v.name}`),
    []
  );
  const tenants = useNames(() => datasource.getTenants(), datasource.uid);
  const sources = useNames(() => datasource.getSources(tenant), `${datasource.uid}/${tenant}`);

  const update = (next: GapwatchQuery) => {
    onChange(next);
    onRunQuery();
  };

  const onQueryTypeChange = (next: QueryType) => {
    const { state, clock, ...rest } = query;
    update({ ...rest, ...queryDefaults(next) });
  };

  const onTenantChange = (value?: string) => {
    // A source belongs to its tenant: a new tenant starts without one.
    update({ ...query, tenant: value ?? '', source: value === tenant ? source : '' });
  };

  return (
    <>
      <InlineFieldRow>
        <InlineField label="Query" labelWidth={LABEL_WIDTH} tooltip="What to ask gapwatch for">
          <RadioButtonGroup<QueryType>
            aria-label="Query type"
            options={QUERY_TYPES}
            value={queryType}
            onChange={onQueryTypeChange}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField
          label="Tenant"
          labelWidth={LABEL_WIDTH}
          tooltip="Empty: every tenant the API token may see. A dashboard variable such as $tenant works too."
        >
          <NamePicker
            inputId="gapwatch-tenant"
            placeholder="all tenants"
            value={tenant}
            names={tenants.names}
            variables={variables}
            loading={tenants.loading}
            error={tenants.error}
            onChange={onTenantChange}
          />
        </InlineField>
        <InlineField
          label="Source"
          labelWidth={LABEL_WIDTH}
          tooltip="Empty: every source of the tenant. Pick a tenant to list its sources."
        >
          <NamePicker
            inputId="gapwatch-source"
            placeholder="all sources"
            value={source}
            names={sources.names}
            variables={variables}
            loading={sources.loading}
            error={sources.error}
            onChange={(value) => update({ ...query, source: value ?? '' })}
          />
        </InlineField>
      </InlineFieldRow>
      {queryType === 'gaps' && (
        <InlineFieldRow>
          <InlineField label="State" labelWidth={LABEL_WIDTH} tooltip="Open gaps have not ended yet">
            <RadioButtonGroup<GapState>
              aria-label="Gap state"
              options={GAP_STATES}
              value={query.state ?? 'all'}
              onChange={(state) => update({ ...query, state })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {queryType === 'rates' && (
        <InlineFieldRow>
          <InlineField label="Clock" labelWidth={LABEL_WIDTH} tooltip="Which timestamp puts an event in its bucket">
            <RadioButtonGroup<Clock>
              aria-label="Clock"
              options={CLOCKS}
              value={query.clock ?? 'arrival'}
              onChange={(clock) => update({ ...query, clock })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {missingStream({ ...query, queryType }) && (
        <Alert
          severity="info"
          title={queryType === 'explain' ? 'An explanation replays one stream' : 'Rates are drawn for one stream'}
        >
          Pick a tenant and a source (or variables such as $tenant and $source).
        </Alert>
      )}
    </>
  );
}

interface NamePickerProps {
  inputId: string;
  placeholder: string;
  value: string;
  names: string[];
  variables: string[];
  loading: boolean;
  error?: string;
  onChange: (value?: string) => void;
}

/** A select over the listed names and the dashboard variables that also takes a typed name. */
function NamePicker({ inputId, placeholder, value, names, variables, loading, error, onChange }: NamePickerProps) {
  const options: Array<SelectableValue<string>> = [
    ...variables.map((v) => ({ label: v, value: v, description: 'Dashboard variable' })),
    ...names.map((n) => ({ label: n, value: n })),
  ];
  return (
    // Combobox replaces Select only from Grafana 11; this plugin supports 10.4.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    <Select<string>
      inputId={inputId}
      width={30}
      placeholder={error ? `could not list: ${error}` : placeholder}
      options={options}
      value={value ? { label: value, value } : null}
      isLoading={loading}
      isClearable
      allowCustomValue
      onCreateOption={(v) => onChange(v.trim())}
      onChange={(selected) => onChange(selected?.value)}
    />
  );
}

interface Names {
  names: string[];
  loading: boolean;
  error?: string;
}

/**
 * Loads a list of names once per key (the datasource and, for sources, the tenant);
 * a failure leaves the list empty and says why.
 */
function useNames(load: () => Promise<string[]>, key: string): Names {
  const [loaded, setLoaded] = useState<{ key: string; names: string[]; error?: string }>();
  useEffect(() => {
    let current = true;
    load().then(
      (names) => current && setLoaded({ key, names }),
      (err: unknown) => current && setLoaded({ key, names: [], error: errorText(err) })
    );
    return () => {
      current = false;
    };
    // load is a new closure on every render; key says when it asks for something else.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  if (loaded?.key !== key) {
    return { names: [], loading: true };
  }
  return { names: loaded.names, loading: false, error: loaded.error };
}

function errorText(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { data?: { message?: string }; message?: string; statusText?: string };
    return e.data?.message || e.message || e.statusText || 'unknown error';
  }
  return String(err);
}
