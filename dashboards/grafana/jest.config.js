// force timezone to UTC to allow tests to work regardless of local timezone
// generally used by snapshots, but can affect specific tests
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');

module.exports = {
  // Jest configuration provided by Grafana scaffolding
  ...base,
  // The first render of Grafana's components takes seconds on a busy machine.
  testTimeout: 30000,
  transform: {
    ...base.transform,
    // @grafana/data 12.0 loads d3-color's ES module build (.mjs), which the scaffold's
    // transform (.js/.ts only) leaves untouched.
    '^.+\\.mjs$': base.transform['^.+\\.(t|j)sx?$'],
  },
};
