import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** What a query asks the gapwatch API for; the backend turns each into frames. */
export type QueryType = 'gaps' | 'coverage' | 'rates' | 'streams' | 'explain';

/** Which gaps a `gaps` query lists. */
export type GapState = 'open' | 'resolved' | 'all';

/** Which clock a `rates` query buckets events by. */
export type Clock = 'arrival' | 'event';

/**
 * The query model shared with the Go backend (CONTRACT.md, "Grafana plugin").
 * An empty tenant or source means every one the API token may see.
 */
export interface GapwatchQuery extends DataQuery {
  queryType?: QueryType;
  tenant?: string;
  source?: string;
  /** gaps only; the backend treats a missing state as `all`. */
  state?: GapState;
  /** rates only; the backend treats a missing clock as `arrival`. */
  clock?: Clock;
}

export const QUERY_TYPES: Array<{ value: QueryType; label: string; description: string }> = [
  { value: 'gaps', label: 'Gaps', description: 'Coverage holes: silences, drops and late data' },
  { value: 'coverage', label: 'Coverage', description: 'Share of expected events received, per source' },
  { value: 'rates', label: 'Rates', description: 'Events per bucket of one stream against its baseline band' },
  { value: 'streams', label: 'Streams', description: 'Every stream with its current status' },
  {
    value: 'explain',
    label: 'Explain',
    description: "Why one stream did or did not page: the detector replayed, each test's evidence against its threshold",
  },
];

export const GAP_STATES: Array<{ value: GapState; label: string }> = [
  { value: 'all', label: 'All' },
  { value: 'open', label: 'Open' },
  { value: 'resolved', label: 'Resolved' },
];

export const CLOCKS: Array<{ value: Clock; label: string; description: string }> = [
  { value: 'arrival', label: 'Arrival', description: 'Count events when gapwatch received them' },
  { value: 'event', label: 'Event', description: 'Count events by their own timestamp' },
];

export const DEFAULT_QUERY_TYPE: QueryType = 'gaps';

/** The fields a query of this type starts with; fields of other types are not carried over. */
export function queryDefaults(queryType: QueryType): Partial<GapwatchQuery> {
  switch (queryType) {
    case 'gaps':
      return { queryType, state: 'all' };
    case 'rates':
      return { queryType, clock: 'arrival' };
    default:
      return { queryType };
  }
}

/** Rates are drawn, and an explanation replayed, for one stream: the backend needs both names. */
export function missingStream(query: GapwatchQuery): boolean {
  return (query.queryType === 'rates' || query.queryType === 'explain') && (!query.tenant || !query.source);
}

/** Settings stored in plain jsonData: none yet; the API base URL is the datasource's `url`. */
export type GapwatchOptions = DataSourceJsonData;

/** Encrypted settings that only the backend reads. */
export interface GapwatchSecureJsonData {
  /** Sent as `Authorization: Bearer <apiToken>`. */
  apiToken?: string;
}
