import plugin from './plugin.json';

// The fields CONTRACT.md ("Grafana plugin") and the Go backend rely on.
describe('plugin.json', () => {
  it('declares the gapwatch backend datasource', () => {
    expect(plugin).toMatchObject({
      type: 'datasource',
      id: 'gapwatch-coverage-datasource',
      name: 'gapwatch',
      backend: true,
      executable: 'gpx_gapwatch',
      alerting: true,
      annotations: true,
      metrics: true,
      info: { description: 'Log coverage holes from gapwatch', author: { name: 'gapwatch' } },
      dependencies: { grafanaDependency: '>=10.4.0', plugins: [] },
    });
    expect(plugin.info.logos).toEqual({ small: 'img/logo.svg', large: 'img/logo.svg' });
  });
});
