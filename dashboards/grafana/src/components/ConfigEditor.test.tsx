import React from 'react';
import { DataSourceSettings } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';

import { GapwatchOptions, GapwatchSecureJsonData } from '../types';
import { ConfigEditor } from './ConfigEditor';

type Settings = DataSourceSettings<GapwatchOptions, GapwatchSecureJsonData>;

function settings(overrides: Partial<Settings> = {}): Settings {
  // `database` is required by the type but deprecated; this datasource has none.
  return {
    id: 1,
    uid: 'gapwatch-test',
    orgId: 1,
    name: 'gapwatch',
    type: 'gapwatch-coverage-datasource',
    typeName: 'gapwatch',
    typeLogoUrl: '',
    access: 'proxy',
    url: '',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    jsonData: {},
    secureJsonFields: {},
    readOnly: false,
    withCredentials: false,
    ...overrides,
  } as Settings;
}

function setup(options: Settings) {
  const onOptionsChange = jest.fn();
  render(<ConfigEditor options={options} onOptionsChange={onOptionsChange} />);
  return onOptionsChange;
}

describe('ConfigEditor', () => {
  it('shows the URL, the token and where the token comes from', () => {
    setup(settings({ url: 'http://gapwatch:8080' }));
    expect(screen.getByLabelText('URL')).toHaveValue('http://gapwatch:8080');
    expect(screen.getByPlaceholderText('the token itself, not its hash')).toHaveValue('');
    expect(screen.getByTestId('gapwatch-token-help')).toHaveTextContent('http.tokens');
    expect(screen.getByTestId('gapwatch-token-help')).toHaveTextContent('SHA-256');
  });

  it('saves the URL as the datasource url', () => {
    const onOptionsChange = setup(settings());
    fireEvent.change(screen.getByLabelText('URL'), { target: { value: ' http://127.0.0.1:8080 ' } });
    expect(onOptionsChange).toHaveBeenCalledWith(
      expect.objectContaining({ url: 'http://127.0.0.1:8080', jsonData: {} })
    );
  });

  it('flags a URL that is not http or https', () => {
    setup(settings({ url: 'gapwatch:8080' }));
    expect(screen.getByText(/An http:\/\/ or https:\/\/ address/)).toBeInTheDocument();
  });

  it('accepts an https URL without complaint', () => {
    setup(settings({ url: 'https://gapwatch.example:8443' }));
    expect(screen.queryByText(/An http:\/\/ or https:\/\/ address/)).not.toBeInTheDocument();
  });

  it('sets the token as secure data only', () => {
    const onOptionsChange = setup(settings());
    fireEvent.change(screen.getByPlaceholderText('the token itself, not its hash'), { target: { value: 's3cret' } });
    const saved: Settings = onOptionsChange.mock.calls[0][0];
    expect(saved.secureJsonData).toEqual({ apiToken: 's3cret' });
    expect(saved.jsonData).toEqual({});
  });

  it('shows a saved token as configured and resets it', () => {
    const onOptionsChange = setup(settings({ secureJsonFields: { apiToken: true } }));
    expect(screen.getByDisplayValue('configured')).toBeDisabled();
    fireEvent.click(screen.getByRole('button', { name: 'Reset' }));
    expect(onOptionsChange).toHaveBeenCalledWith(
      expect.objectContaining({
        secureJsonFields: { apiToken: false },
        secureJsonData: { apiToken: '' },
      })
    );
  });
});
