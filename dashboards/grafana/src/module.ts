import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { GapwatchOptions, GapwatchQuery } from './types';

export const plugin = new DataSourcePlugin<DataSource, GapwatchQuery, GapwatchOptions>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
