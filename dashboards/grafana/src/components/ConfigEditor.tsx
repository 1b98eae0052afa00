import React, { ChangeEvent } from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { InlineField, Input, SecretInput } from '@grafana/ui';

import { GapwatchOptions, GapwatchSecureJsonData } from '../types';

type Props = DataSourcePluginOptionsEditorProps<GapwatchOptions, GapwatchSecureJsonData>;

const LABEL_WIDTH = 14;

/** The API's base URL and its token; the token is stored encrypted and only the backend reads it. */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const url = options.url ?? '';
  const tokenConfigured = Boolean(options.secureJsonFields?.apiToken);

  const onURLChange = (event: ChangeEvent<HTMLInputElement>) => {
    onOptionsChange({ ...options, url: event.target.value.trim() });
  };

  const onTokenChange = (event: ChangeEvent<HTMLInputElement>) => {
    onOptionsChange({
      ...options,
      secureJsonData: { ...options.secureJsonData, apiToken: event.target.value },
    });
  };

  const onTokenReset = () => {
    onOptionsChange({
      ...options,
      secureJsonFields: { ...options.secureJsonFields, apiToken: false },
      secureJsonData: { ...options.secureJsonData, apiToken: '' },
    });
  };

  return (
    <>
      <InlineField
        label="URL"
        labelWidth={LABEL_WIDTH}
        invalid={!validURL(url)}
        error="An http:// or https:// address, e.g. http://gapwatch:8080"
        tooltip="Base URL of the gapwatch API (the process with role api), without /api/v1"
      >
        <Input id="gapwatch-url" width={40} placeholder="http://gapwatch:8080" value={url} onChange={onURLChange} />
      </InlineField>
      <InlineField
        label="API token"
        labelWidth={LABEL_WIDTH}
        tooltip="Sent as a bearer token on every request to the gapwatch API"
      >
        <SecretInput
          id="gapwatch-api-token"
          width={40}
          placeholder="the token itself, not its hash"
          isConfigured={tokenConfigured}
          value={options.secureJsonData?.apiToken ?? ''}
          onChange={onTokenChange}
          onReset={onTokenReset}
        />
      </InlineField>
      <p data-testid="gapwatch-token-help">
        gapwatch checks tokens against <code>http.tokens</code> in its configuration, which holds only each token&apos;s
        SHA-256 hash and the tenants it may see (<code>[&quot;*&quot;]</code> for all). Paste the token itself here;
        Grafana stores it encrypted. Leave it empty when the API runs without tokens (loopback only).
      </p>
    </>
  );
}

function validURL(url: string): boolean {
  return url === '' || /^https?:\/\/[^\s/]+/.test(url);
}
