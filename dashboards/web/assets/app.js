// gapwatch coverage page. Reads only the public API (/api/v1/...) and draws
// with the DOM: every tenant or source name reaches the page as text
// (textContent, attributes), never as markup.
'use strict';

(() => {
  const REFRESH_MS = 10000;
  const MAX_TENANTS = 40; // fleet map rows beyond this are left to the filter
  const OPEN_ROWS = 6; // open gaps listed before "show all"
  const PARALLEL = 4; // concurrent per-tenant requests
  const TOKEN_KEY = 'gapwatch.token';
  const MIN = 60e3;
  const HOUR = 60 * MIN;
  const WINDOWS = { '15m': 15 * MIN, '30m': 30 * MIN, '1h': HOUR, '6h': 6 * HOUR, '24h': 24 * HOUR, '7d': 7 * 24 * HOUR };
  // Steps the page asks for, smallest first; the server accepts multiples of its bucket width.
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((m) => m * MIN);
  const TICKS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((m) => m * MIN);
  const SVG = 'http://www.w3.org/2000/svg';

  const state = {
    window: '1h',
    filter: '',
    tenant: null, // the drill-down's tenant, or null for the fleet
    minStep: 0, // index into STEPS of the smallest step the server accepted
    busy: false,
    again: false,
    allGaps: false, // list every open gap, not only the largest
    lastOK: 0,
    needToken: false,
    status: null, // the last answers of /api/v1/status and /readyz, for the pills
    ready: null,
    explainSeq: 0, // the latest "why?" asked: an older answer arriving later is dropped
  };

  // ---------- DOM helpers (text only, never markup) ----------

  const $ = (id) => document.getElementById(id);

  // el('td', {class: 'num'}, 'text', childNode, ...): strings become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  // ---------- formatting ----------

  const nf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const num = (x) => (x === null || x === undefined ? '–' : nf.format(x));
  const pct = (x) => (x === null || x === undefined ? '–' : (x >= 0.995 && x < 1 ? '99.5' : (Math.round(x * 1000) / 10).toString()) + ' %');

  function hhmm(t) {
    return new Date(t).toISOString().slice(11, 16);
  }

  function when(t) {
    const d = new Date(t);
    const today = new Date().toISOString().slice(0, 10);
    const day = d.toISOString().slice(0, 10);
    return (day === today ? '' : day + ' ') + d.toISOString().slice(11, 16) + ' UTC';
  }

  function duration(ms) {
    const m = Math.max(0, Math.round(ms / MIN));
    if (m < 60) return m + ' min';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function seconds(s) {
    if (s < 120) return Math.round(s) + ' s';
    return duration(s * 1000);
  }

  // ---------- API ----------

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return '';
    }
  }

  async function get(path, params) {
    const q = params ? '?' + new URLSearchParams(params).toString() : '';
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    let resp;
    try {
      resp = await fetch(path + q, { headers, cache: 'no-store' });
    } catch (e) {
      throw new APIError(0, 'cannot reach the API');
    }
    if (resp.status === 401) {
      state.needToken = true;
      throw new APIError(401, t ? 'the token was refused' : 'a token is needed');
    }
    const text = await resp.text();
    if (!resp.ok) {
      let msg = text.trim();
      try {
        msg = JSON.parse(text).error || msg;
      } catch (e) {
        /* plain text */
      }
      throw new APIError(resp.status, msg || resp.statusText);
    }
    return path.endsWith('readyz') ? text : JSON.parse(text);
  }

  const api = (name, params) => get('api/v1/' + name, params);

  // settle turns a promise into {ok, err}: one failing part never blanks the page.
  const settle = (p) => p.then((ok) => ({ ok }), (err) => ({ err }));

  async function pool(items, fn) {
    const out = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await settle(fn(items[i]));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
    return out;
  }

  // windowed queries ask for the smallest step that gives at most ~160 cells
  // and that the server accepts; a 400 about the bucket width moves up a step.
  function stepIndex(span) {
    let i = state.minStep;
    while (i < STEPS.length - 1 && span / STEPS[i] > 160) i++;
    return i;
  }

  async function windowed(name, params, range) {
    for (let i = range.stepIndex; i < STEPS.length; i++) {
      const step = STEPS[i];
      const to = Math.ceil(range.now / step) * step;
      const from = to - Math.ceil(range.span / step) * step;
      try {
        const body = await api(name, {
          ...params,
          from: new Date(from).toISOString().replace('.000Z', 'Z'),
          to: new Date(to).toISOString().replace('.000Z', 'Z'),
          step: step / 1000 + 's',
        });
        if (i > state.minStep) state.minStep = i;
        return { body, from, to, step };
      } catch (e) {
        if (!(e instanceof APIError && e.status === 400 && /bucket/.test(e.message))) throw e;
      }
    }
    throw new APIError(400, 'no step the server accepts');
  }

  // ---------- colours ----------

  const mix = (a, b, f) => a.map((x, i) => Math.round(x + (b[i] - x) * f));
  const hex = (c) => '#' + c.map((x) => x.toString(16).padStart(2, '0')).join('');
  // A step of a healthy stream often falls short of its expectation by
  // chance (a quarter short is ordinary at 30 events a step): everything from
  // 75 % up is blue, so that only real shortfalls draw the eye.
  const STOPS = [
    [0, [183, 18, 42]],
    [0.25, [224, 60, 49]],
    [0.5, [245, 150, 79]],
    [0.7499, [246, 214, 125]],
    [0.75, [176, 211, 229]],
    [1, [127, 184, 214]],
  ];

  function shareColour(s) {
    for (let i = 1; i < STOPS.length; i++) {
      const [x1, c1] = STOPS[i];
      if (s <= x1) {
        const [x0, c0] = STOPS[i - 1];
        return hex(mix(c0, c1, (s - x0) / (x1 - x0)));
      }
    }
    return hex(STOPS[STOPS.length - 1][1]);
  }

  const NO_BASELINE = '#d9dce0';
  const PENDING = '#eef0f2';

  function legend() {
    const item = (cls, colour, text) => {
      const sw = el('i', { class: 'sw ' + cls });
      if (colour) sw.style.background = colour;
      return el('span', null, sw, text);
    };
    $('legend').replaceChildren(
      el('span', null, 'share of the expected events that arrived:'),
      item('', shareColour(1), '≥ 75 %'),
      item('', shareColour(0.62), '50–75 %'),
      item('', shareColour(0.37), '25–50 %'),
      item('', shareColour(0), 'under 25 %'),
      item('', NO_BASELINE, 'not judged (learning, or gapwatch not running)'),
      item('', PENDING, 'still arriving'),
      item('gapmark', null, 'detected gap'),
      item('plannedmark', null, 'planned (maintenance)'),
    );
  }

  // ---------- the time axis ----------

  function axis(from, to) {
    const span = to - from;
    const tick = TICKS.find((t) => span / t <= 8) || TICKS[TICKS.length - 1];
    const box = el('div', { class: 'axis' });
    for (let t = Math.ceil(from / tick) * tick; t < to; t += tick) {
      const f = (t - from) / span;
      if (f < 0.02 || f > 0.98) continue;
      const label = el('span', null, tick >= 1440 * MIN ? new Date(t).toISOString().slice(5, 10) : hhmm(t));
      label.style.left = (f * 100).toFixed(3) + '%';
      box.append(label);
    }
    return box;
  }

  // ---------- the fleet map ----------

  // strip draws one stream's coverage: a cell per step coloured by its share,
  // and under it a bar for every gap overlapping the window.
  function strip(tenant, source, points, gaps, win, watermark) {
    const n = Math.round((win.to - win.from) / win.step);
    const s = svg('svg', { class: 'strip', viewBox: `0 0 ${n} 1.3`, preserveAspectRatio: 'none', role: 'img',
      'aria-label': `${tenant} / ${source} coverage` });
    const byT = new Map((points || []).map((p) => [Date.parse(p.t), p]));
    for (let i = 0; i < n; i++) {
      const t = win.from + i * win.step;
      const p = byT.get(t);
      let fill = NO_BASELINE;
      let text;
      if (p && p.share !== null && p.share !== undefined) {
        fill = shareColour(p.share);
        const got = Math.max(p.observed || 0, p.received || 0);
        text = `${num(got)} of ${num(p.expected)} expected (${pct(p.share)})`;
      } else if (watermark && t + win.step > watermark) {
        fill = PENDING;
        text = 'still arriving (past the watermark)';
      } else {
        text = 'not judged (no baseline, or gapwatch was not running)';
      }
      s.append(svg('rect', { class: 'cell', x: i, y: 0, width: 1.02, height: 1, fill },
        svg('title', null, `${tenant} / ${source}\n${hhmm(t)}–${hhmm(t + win.step)} UTC: ${text}`)));
    }
    for (const g of gaps) {
      const start = Math.max(Date.parse(g.started_at), win.from);
      const end = Math.min(g.ended_at ? Date.parse(g.ended_at) : win.to, win.to);
      if (end <= start) continue;
      const x = (start - win.from) / win.step;
      const w = Math.max((end - start) / win.step, 0.35);
      s.append(svg('rect', { 'data-gap-id': g.id, class: 'gapmark', x, y: 1.06, width: w, height: 0.24,
        fill: g.planned ? '#5b7fb8' : '#8c0f20' },
      svg('title', null, gapTitle(g))));
    }
    return s;
  }

  function gapTitle(g) {
    return `${g.tenant} / ${g.source}: ${g.planned ? 'planned ' : ''}${g.kind} since ${when(g.started_at)}` +
      (g.ended_at ? ` until ${when(g.ended_at)}` : ' (open)') +
      `\n≈ ${num(g.missing_events)} events missing of ${num(g.expected_events)} expected`;
  }

  function tenantBlock(grid, t, cov, gapsBy, statusBy, win, watermark, link) {
    const streams = new Map();
    if (cov && cov.ok) for (const s of cov.ok.body.streams) streams.set(s.source, s);
    const sources = [...new Set([...t.sources, ...streams.keys()])].sort();
    const open = sources.reduce((n, src) => n + (gapsBy.get(t.tenant + '\u0000' + src) || []).filter((g) => !g.ended_at).length, 0);
    let expected = 0;
    let covered = 0;
    for (const s of streams.values()) {
      if (s.share === null) continue;
      expected += s.expected_events;
      covered += s.share * s.expected_events;
    }
    const meta = el('span', { class: 'meta' }, `${sources.length} source${sources.length === 1 ? '' : 's'}`,
      expected > 0 ? ` · ${pct(covered / expected)} of expected events` : '',
      open ? [' · ', el('span', { class: 'hot' }, `${open} open gap${open === 1 ? '' : 's'}`)] : '');
    // In the drill-down the tenant is named in the title already.
    const name = link ? el('a', { href: '#' + new URLSearchParams({ tenant: t.tenant, w: state.window }) }, t.tenant) : null;
    grid.append(el('div', { class: 'tenant-head', 'data-tenant': t.tenant }, name, meta));
    if (cov && cov.err) {
      grid.append(el('div'), el('div', { class: 'tenant-error' }, cov.err.status === 403 ? 'this token may not read this tenant (403)' : 'coverage unavailable: ' + cov.err.message));
      return;
    }
    for (const src of sources) {
      const st = statusBy.get(t.tenant + '\u0000' + src);
      grid.append(
        el('div', { class: 'src', title: `${t.tenant} / ${src}` },
          st && st.status !== 'ok' && st.status !== 'learning' ? el('span', { class: 'badge ' + st.status }, st.status) : null,
          el('span', { class: 'name' }, src)),
        strip(t.tenant, src, streams.has(src) ? streams.get(src).points : null, gapsBy.get(t.tenant + '\u0000' + src) || [], win, watermark));
    }
  }

  function mapGrid(win) {
    const grid = el('div', { class: 'fleet-grid' });
    grid.append(el('div', { class: 'muted' }, 'UTC'), axis(win.from, win.to));
    return grid;
  }

  // ---------- gap tables ----------

  function gapTable(gaps, opts) {
    if (gaps.length === 0) {
      return el('p', { class: 'ok-text' }, opts.empty);
    }
    const now = Date.now();
    const head = el('tr', null, el('th', null, 'stream'), el('th', null, 'kind'), el('th', null, 'started'),
      el('th', null, opts.ended ? 'ended' : 'open for'), el('th', { class: 'num' }, 'expected'),
      el('th', { class: 'num' }, 'received'), el('th', { class: 'num' }, 'missing (estimate)'), opts.explain ? el('th', null, '') : null);
    const rows = gaps.map((g) => {
      const frac = g.expected_events > 0 ? Math.min(1, g.missing_events / g.expected_events) : 0;
      const bar = el('span', { class: 'bar', title: pct(frac) + ' of the expected events missing' }, el('span'));
      bar.firstChild.style.width = (frac * 100).toFixed(1) + '%';
      return el('tr', { 'data-gap-id': g.id, class: g.planned ? 'planned' : null },
        el('td', null, opts.tenantLinks
          ? el('a', { class: 'stream-name', href: '#' + new URLSearchParams({ tenant: g.tenant, w: state.window }) }, g.tenant)
          : el('span', { class: 'stream-name' }, g.tenant),
        el('span', { class: 'sep' }, '/'), g.source),
        el('td', null, el('span', { class: 'badge ' + g.kind }, g.kind), g.planned ? [' ', el('span', { class: 'badge planned' }, 'planned')] : null),
        el('td', null, when(g.started_at)),
        el('td', null, opts.ended ? (g.ended_at ? when(g.ended_at) : el('b', null, 'open')) : duration(now - Date.parse(g.started_at))),
        el('td', { class: 'num' }, num(g.expected_events)),
        el('td', { class: 'num' }, num(g.observed_events)),
        el('td', { class: 'num missing' }, '≈ ' + num(g.missing_events), bar),
        opts.explain ? el('td', null, whyButton(g)) : null);
    });
    return el('table', null, el('thead', null, head), el('tbody', null, rows));
  }

  // ---------- the rate chart ----------

  function rateChart(source, st, res, gaps, watermark) {
    const box = el('div', { class: 'chart' });
    const title = el('h3', null, el('span', null, source), st ? el('span', { class: 'badge ' + st.status }, st.status) : null,
      st ? el('span', { class: 'note' }, num(st.events_per_min) + ' events/min') : null,
      st && st.profile ? el('span', { class: 'note', title: 'what the detector judged the last bucket against (GET /api/v1/streams)' },
        st.profile + ' profile, weekends ' + st.weekend) : null);
    box.append(title);
    if (res.err) {
      box.append(el('p', { class: 'err' }, res.err.status === 403 ? 'this token may not read this stream (403)' : res.err.message));
      return box;
    }
    const { body, from, to, step } = res.ok;
    const pts = body.points;
    const n = pts.length;
    let ymax = 1;
    for (const p of pts) ymax = Math.max(ymax, p.events, p.upper || 0);
    ymax *= 1.08;
    const W = 1000;
    const H = 100;
    const x = (i) => ((i + 0.5) / n) * W;
    const y = (v) => H - (v / ymax) * H;
    const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `${source} rate` });
    for (const g of gaps) {
      const s = Math.max(Date.parse(g.started_at), from);
      const e = Math.min(g.ended_at ? Date.parse(g.ended_at) : to, to);
      if (e <= s) continue;
      plot.append(svg('rect', { 'data-gap-id': g.id, x: ((s - from) / (to - from)) * W, y: 0, width: Math.max(((e - s) / (to - from)) * W, 2), height: H,
        fill: g.planned ? 'rgba(91,127,184,0.16)' : 'rgba(215,38,61,0.16)' }, svg('title', null, gapTitle(g))));
    }
    // The band and the expectation, in runs of steps that have one.
    let run = [];
    const flush = () => {
      if (run.length > 0) {
        const upper = run.map((i) => `${x(i)},${y(pts[i].upper)}`);
        const lower = run.map((i) => `${x(i)},${y(pts[i].lower)}`).reverse();
        plot.append(svg('polygon', { points: upper.concat(lower).join(' '), fill: '#cfe2ef' }));
        plot.append(svg('polyline', { points: run.map((i) => `${x(i)},${y(pts[i].expected)}`).join(' '), fill: 'none',
          stroke: '#1d5f8a', 'stroke-width': 1.5, 'stroke-dasharray': '5 4', 'vector-effect': 'non-scaling-stroke' }));
      }
      run = [];
    };
    pts.forEach((p, i) => (p.expected === null ? flush() : run.push(i)));
    flush();
    // Events: solid up to the last step the pipeline has fully seen, dotted
    // over the steps still filling (their counts are partial).
    const complete = (p) => Date.parse(p.t) + step <= (watermark || Date.now());
    let cut = pts.length;
    while (cut > 0 && !complete(pts[cut - 1])) cut--;
    const line = (from, to, extra) => svg('polyline', { points: pts.slice(from, to).map((p, j) => `${x(from + j)},${y(p.events)}`).join(' '),
      fill: 'none', stroke: '#1f2933', 'stroke-width': 1.75, 'stroke-linejoin': 'round', 'vector-effect': 'non-scaling-stroke', ...extra });
    if (cut > 1) plot.append(line(0, cut));
    if (cut < pts.length) plot.append(line(Math.max(cut - 1, 0), pts.length, { stroke: '#8a96a3', 'stroke-dasharray': '2 3' }));
    // Hover: one transparent column per step with the figures.
    for (let i = 0; i < n; i++) {
      const p = pts[i];
      const band = p.expected === null ? 'no baseline' : `expected ${num(p.expected)} (${num(p.lower)}–${num(p.upper)})`;
      plot.append(svg('rect', { x: (i / n) * W, y: 0, width: W / n, height: H, fill: 'transparent' },
        svg('title', null, `${hhmm(Date.parse(p.t))} UTC: ${num(p.events)} events, ${band}`)));
    }
    box.append(el('div', { class: 'plot' }, plot, el('span', { class: 'ymax' }, num(ymax / 1.08) + ' / ' + duration(step))), axis(from, to));
    return box;
  }

  // ---------- why a gap opened (GET /api/v1/explain) ----------

  function whyButton(g) {
    const b = el('button', { type: 'button', class: 'link why', title: 'replay the detector over this gap and show its evidence' }, 'why?');
    b.addEventListener('click', () => explain(g));
    return b;
  }

  // explainPeriod is what the page asks the detector to replay for gap g:
  // before its start twice the time it took to detect (30 minutes to 6
  // hours), after its detection half that (at least 15 minutes), on the
  // bucket grid, ending by the ingest watermark (later counts are not stored
  // yet and would read as empty).
  function explainPeriod(g, bucket, watermark) {
    const started = Date.parse(g.started_at);
    const detected = Date.parse(g.detected_at);
    const took = Math.max(0, detected - started);
    const from = Math.floor((started - Math.min(Math.max(2 * took, 30 * MIN), 6 * HOUR)) / bucket) * bucket;
    let to = Math.ceil((detected + Math.max(took / 2, 15 * MIN)) / bucket) * bucket;
    if (watermark) to = Math.min(to, Math.floor(watermark / bucket) * bucket);
    return to > from ? { from, to } : null;
  }

  async function explain(g) {
    const seq = ++state.explainSeq;
    const box = $('tenant-explain');
    const title = el('h3', null, el('span', { class: 'stream-name' }, g.tenant), el('span', { class: 'sep' }, '/'), g.source,
      el('span', { class: 'badge ' + g.kind }, g.kind), el('span', { class: 'note' }, 'started ' + when(g.started_at)));
    box.hidden = false;
    box.replaceChildren(title, el('p', { class: 'muted' }, 'replaying the detector…'));
    box.scrollIntoView({ block: 'nearest' });
    const status = state.status && state.status.ok;
    const bucket = status && status.bucket_seconds ? status.bucket_seconds * 1000 : 0;
    const watermark = status && status.watermark ? Date.parse(status.watermark) : 0;
    const period = bucket ? explainPeriod(g, bucket, watermark) : null;
    if (!period) {
      box.replaceChildren(title, el('p', { class: 'err' }, bucket ? 'nothing to replay before the ingest watermark yet' : 'the API does not say its bucket width'));
      return;
    }
    const iso = (t) => new Date(t).toISOString().replace('.000Z', 'Z');
    let body;
    try {
      body = await api('explain', { tenant: g.tenant, source: g.source, from: iso(period.from), to: iso(period.to) });
    } catch (e) {
      if (seq !== state.explainSeq) return;
      box.replaceChildren(title, el('p', { class: 'err' }, e.status === 403 ? 'this token may not read this stream (403)' : e.message));
      return;
    }
    if (seq !== state.explainSeq) return; // another "why?" was asked, or the view changed
    // Live detection may open a gap at a slot inside a bucket; the replay
    // judges whole buckets, so it reaches the detection once the watermark
    // has passed that bucket's end.
    const reached = period.to >= Math.ceil(Date.parse(g.detected_at) / bucket) * bucket;
    box.replaceChildren(title, ...explainView(body, period, bucket, g.kind, reached).filter(Boolean));
  }

  // explainView draws a replay: the counts against what the tests judged
  // them by, each test's evidence as a share of what opens a gap, and the
  // gaps the replay opened.
  function explainView(body, period, bucket, kind, reached) {
    const bs = body.buckets;
    const n = Math.max(1, Math.round((period.to - period.from) / bucket));
    const W = 1000;
    const H = 100;
    const left = (t) => ((t - period.from) / (period.to - period.from)) * W; // a time's x
    const x = (t) => left(t + bucket / 2); // a bucket's middle
    const at = bs.map((b) => Date.parse(b.bucket));

    let ymax = 1;
    for (const b of bs) ymax = Math.max(ymax, b.observed, b.judged || 0, b.expected || 0);
    ymax *= 1.08;
    const y = (v) => H - (v / ymax) * H;
    const counts = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'counts against the judged expectation', class: 'counts' });
    bs.forEach((b, i) => {
      if (b.state === 'gap') counts.append(svg('rect', { x: left(at[i]), y: 0, width: W / n, height: H, fill: 'rgba(215,38,61,0.16)' }));
    });
    const poly = (pts, extra) => svg('polyline', { points: pts.join(' '), fill: 'none', 'vector-effect': 'non-scaling-stroke', 'stroke-linejoin': 'round', ...extra });
    counts.append(poly(bs.flatMap((b, i) => (b.judged === null ? [] : [`${x(at[i])},${y(b.judged)}`])),
      { stroke: '#1d5f8a', 'stroke-width': 1.5, 'stroke-dasharray': '5 4' }));
    counts.append(poly(bs.map((b, i) => `${x(at[i])},${y(b.observed)}`), { stroke: '#1f2933', 'stroke-width': 1.75 }));
    // Where the replay's gaps were detected.
    for (const o of body.opened) {
      const d = left(Date.parse(o.detected_at));
      counts.append(svg('line', { x1: d, x2: d, y1: 0, y2: H, stroke: '#d7263d', 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' },
        svg('title', null, `${o.kind} detected ${when(o.detected_at)}`)));
    }

    // Evidence: a drop opens when a drop test's evidence passes its
    // threshold, a silence when the run's log probability falls below its
    // (negative) threshold; both drawn as a share of what opens, 1 = opens.
    const CAP = 2;
    const dropShare = (b) => (b.drop_threshold > 0 ? Math.max(b.drop50 || 0, b.drop75 || 0, b.rank || 0) / b.drop_threshold : 0);
    const silShare = (b) => (b.silence_threshold < 0 && b.silence_run > 0 ? (b.silence_logp === null ? CAP : b.silence_logp / b.silence_threshold) : 0);
    const lateShare = (b) => (b.late_threshold > 0 ? (b.late || 0) / b.late_threshold : 0);
    const ey = (v) => H - (Math.min(v, CAP) / CAP) * H;
    const ev = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'evidence against the threshold', class: 'evidence' });
    ev.append(svg('line', { x1: 0, x2: W, y1: ey(1), y2: ey(1), stroke: '#d7263d', 'stroke-width': 1, 'stroke-dasharray': '3 3', 'vector-effect': 'non-scaling-stroke' }));
    ev.append(poly(bs.map((b, i) => `${x(at[i])},${ey(dropShare(b))}`), { stroke: '#c77c02', 'stroke-width': 1.5 }));
    ev.append(poly(bs.map((b, i) => `${x(at[i])},${ey(silShare(b))}`), { stroke: '#7a1f8a', 'stroke-width': 1.5 }));
    ev.append(poly(bs.map((b, i) => `${x(at[i])},${ey(lateShare(b))}`), { stroke: '#2f8a5b', 'stroke-width': 1.5 }));

    // Hover: the bucket's figures.
    bs.forEach((b, i) => {
      const col = { x: left(at[i]), y: 0, width: W / n, height: H, fill: 'transparent' };
      const text = `${hhmm(at[i])} UTC: ${num(b.observed)} events, judged against ${num(b.judged)} (${b.state}); ` +
        `drop evidence ${pct(dropShare(b))} of its threshold, silence ${pct(silShare(b))}, lateness ${pct(lateShare(b))}`;
      counts.append(svg('rect', col, svg('title', null, text)));
      ev.append(svg('rect', col, svg('title', null, text)));
    });

    const opened = body.opened.map((o) => el('li', null, el('span', { class: 'badge ' + o.kind }, o.kind),
      ` opened: started ${when(o.started_at)}, detected ${when(o.detected_at)}, ≈ ${num(o.missing_events)} of ${num(o.expected_events)} expected events missing`));
    return [
      el('div', { class: 'chart-legend' },
        el('span', null, el('i', { class: 'sw events' }), ' events'), el('span', null, el('i', { class: 'sw expected' }), ' judged against'),
        el('span', null, el('i', { class: 'sw dropev' }), ' drop evidence'), el('span', null, el('i', { class: 'sw silev' }), ' silence evidence'),
        el('span', null, el('i', { class: 'sw lateev' }), ' lateness evidence'),
        el('span', null, el('i', { class: 'sw threshold' }), ' opens a gap'), el('span', null, el('i', { class: 'sw detected' }), ' detected')),
      el('div', { class: 'plot' }, counts, el('span', { class: 'ymax' }, num(ymax / 1.08) + ' / ' + duration(bucket))),
      el('div', { class: 'plot short' }, ev, el('span', { class: 'ymax' }, 'evidence, ×threshold (top: ' + CAP + ')')),
      axis(period.from, period.to),
      kind === 'late' ? el('p', { class: 'note' }, 'A late gap is judged on how late the stream\'s events arrive (the lateness evidence), not on their count: the counts above are by arrival.') : null,
      opened.length ? el('ul', { class: 'opened' }, opened) : null,
      !opened.length && reached ? el('p', { class: 'muted' }, 'The replay opened no gap in this period: live detection held state from before the replay\'s history.') : null,
      !reached ? el('p', { class: 'muted' }, 'The ingest watermark has not passed the bucket this gap was detected in yet, so the replay stops short of it: ask again in a minute.') : null,
      el('p', { class: 'note' }, `Replayed from ${when(body.replayed_from)} with the detector's settings (GET /api/v1/explain; gapwatch explain writes the same per bucket).`),
    ];
  }

  // ---------- health ----------

  function health(status, ready) {
    const pills = [];
    const pill = (cls, ...content) => el('span', { class: 'pill ' + cls }, el('i', { class: 'dot' }), ...content);
    if (ready.ok !== undefined) {
      pills.push(pill('good', el('b', null, 'ready')));
    } else {
      const why = ready.err.message.replace(/^not ready:\s*/, '').replace(/\n/g, '; ');
      pills.push(pill('bad', el('b', null, 'not ready'), ready.err.status ? why : 'API unreachable'));
    }
    if (status.ok) {
      const s = status.ok;
      const lag = s.lag_seconds;
      const cls = lag === null || lag === undefined ? '' : lag > 300 ? 'bad' : lag > 90 ? 'warn' : 'good';
      if (s.watermark) pills.push(pill(cls, 'watermark ', el('b', null, s.watermark.slice(11, 19) + ' UTC')));
      if (lag !== null && lag !== undefined) pills.push(pill(cls, 'lag ', el('b', null, seconds(lag))));
      if (!s.watermark && s.watermark_unknown) pills.push(pill('warn', 'watermark unknown: ' + s.watermark_unknown));
      pills.push(pill('', el('b', null, s.version || '?'), ' · ', (s.roles || []).join(', ')));
    } else if (status.err) {
      pills.push(pill('warn', 'status: ' + status.err.message));
    }
    const age = state.lastOK ? (Date.now() - state.lastOK) / 1000 : null;
    pills.push(pill(age !== null && age < 3 * REFRESH_MS / 1000 ? 'good' : 'bad',
      age === null ? 'no answer yet' : 'updated ', age === null ? null : el('b', null, new Date(state.lastOK).toISOString().slice(11, 19))));
    $('health').replaceChildren(...pills);
  }

  // ---------- one refresh ----------

  function index(list, key) {
    const m = new Map();
    for (const x of list) {
      const k = key(x);
      if (!m.has(k)) m.set(k, []);
      m.get(k).push(x);
    }
    return m;
  }

  function matches(t) {
    const f = state.filter.trim().toLowerCase();
    if (!f) return t;
    if (t.tenant.toLowerCase().includes(f)) return t;
    const sources = t.sources.filter((s) => s.toLowerCase().includes(f));
    return sources.length ? { tenant: t.tenant, sources } : null;
  }

  // refresh loads and draws the current view. A tick that finds the last
  // one still running is skipped; a person's change waits for it and runs.
  async function refresh(tick) {
    if (state.busy) {
      if (!tick) state.again = true;
      return;
    }
    state.busy = true;
    try {
      await load();
    } catch (e) {
      showError(e);
    } finally {
      // The pills also say when the page last had a whole answer.
      if (state.ready) health(state.status, state.ready);
      state.busy = false;
      if (state.again) {
        state.again = false;
        refresh();
      }
    }
  }

  function showError(e) {
    const b = $('banner');
    if (e) {
      b.replaceChildren(e instanceof APIError && e.status === 0
        ? 'Cannot reach the gapwatch API; showing the last data. Retrying every 10 s.'
        : 'The API answered: ' + e.message);
      b.hidden = false;
    } else {
      b.hidden = true;
    }
  }

  async function load() {
    const span = WINDOWS[state.window];
    const range = { now: Date.now(), span, stepIndex: stepIndex(span) };
    state.needToken = false; // until a request answers 401
    const [status, ready, tenants, streams] = await Promise.all([
      settle(api('status')), settle(get('readyz')), settle(api('tenants')), settle(api('streams'))]);
    state.status = status;
    state.ready = ready;
    tokenForm();
    if (state.needToken) return;
    if (tenants.err) throw tenants.err;
    const list = tenants.ok;
    const watermark = status.ok && status.ok.watermark ? Date.parse(status.ok.watermark) : 0;
    const statusBy = new Map((streams.ok || []).map((s) => [s.tenant + '\u0000' + s.source, s]));
    const gapWin = { from: range.now - span, to: range.now + MIN };
    const gapParams = { state: 'all', from: new Date(gapWin.from).toISOString(), to: new Date(gapWin.to).toISOString() };
    if (state.tenant === null) {
      await loadFleet(list, gapParams, range, statusBy, watermark);
    } else {
      await loadTenant(list, gapParams, range, statusBy, watermark);
    }
    state.lastOK = Date.now();
    showError(null);
  }

  async function loadFleet(list, gapParams, range, statusBy, watermark) {
    const gaps = await api('gaps', gapParams);
    const gapsBy = index(gaps, (g) => g.tenant + '\u0000' + g.source);
    const openBy = new Map();
    for (const g of gaps) if (!g.ended_at && !g.planned) openBy.set(g.tenant, (openBy.get(g.tenant) || 0) + 1);
    const shown = list.map(matches).filter(Boolean)
      .sort((a, b) => (openBy.get(b.tenant) || 0) - (openBy.get(a.tenant) || 0) || a.tenant.localeCompare(b.tenant));
    const page = shown.slice(0, MAX_TENANTS);
    const covs = await pool(page, (t) => windowed('coverage', { tenant: t.tenant }, range));
    const good = covs.find((c) => c.ok);
    const win = good ? good.ok : { ...range, ...fallbackWindow(range) };

    // Unplanned first, the largest holes first; a long list is cut so that the map stays in view.
    const open = gaps.filter((g) => !g.ended_at)
      .sort((a, b) => a.planned - b.planned || b.missing_events - a.missing_events);
    const count = $('open-count');
    count.textContent = String(open.length);
    count.className = 'count' + (open.some((g) => !g.planned) ? ' hot' : '');
    const listed = state.allGaps ? open : open.slice(0, OPEN_ROWS);
    const parts = [gapTable(listed, { tenantLinks: true, empty: 'No open gaps: every stream is delivering what its baseline expects.' })];
    if (open.length > OPEN_ROWS) {
      const tenants = new Set(open.map((g) => g.tenant)).size;
      const missing = open.filter((g) => !g.planned).reduce((n, g) => n + g.missing_events, 0);
      const more = el('button', { type: 'button', class: 'link more-gaps' }, state.allGaps ? 'show the largest only' : `show all ${open.length}`);
      more.addEventListener('click', () => {
        state.allGaps = !state.allGaps;
        refresh();
      });
      parts.push(el('p', { class: 'more' }, `${open.length} open gaps in ${tenants} tenant${tenants === 1 ? '' : 's'}, ≈ ${num(missing)} events missing (planned ones aside) · `, more));
    }
    $('open-gaps').replaceChildren(...parts);

    const grid = mapGrid(win);
    page.forEach((t, i) => tenantBlock(grid, t, covs[i], gapsBy, statusBy, win, watermark, true));
    const fleet = [grid];
    if (shown.length > page.length) fleet.push(el('p', { class: 'more' }, `Showing ${page.length} of ${shown.length} tenants (those with open gaps first); the filter narrows the list.`));
    if (shown.length === 0) fleet.push(el('p', { class: 'muted' }, list.length ? 'No tenant or source matches the filter.' : 'No tenants yet: nothing has been ingested.'));
    $('fleet').replaceChildren(...fleet);
    $('fleet-note').textContent = `last ${state.window}, one cell per ${duration(win.step)}`;
  }

  function fallbackWindow(range) {
    const step = STEPS[range.stepIndex];
    const to = Math.ceil(range.now / step) * step;
    return { from: to - Math.ceil(range.span / step) * step, to, step };
  }

  async function loadTenant(list, gapParams, range, statusBy, watermark) {
    const name = state.tenant;
    const t = list.find((x) => x.tenant === name) || { tenant: name, sources: [] };
    $('tenant-name').textContent = name;
    const [gapsRes, cov] = await Promise.all([settle(api('gaps', { ...gapParams, tenant: name })),
      settle(windowed('coverage', { tenant: name }, range))]);
    const gaps = gapsRes.ok || [];
    const sources = [...new Set([...t.sources, ...(cov.ok ? cov.ok.body.streams.map((s) => s.source) : [])])].sort();
    const win = cov.ok || { ...range, ...fallbackWindow(range) };
    const gapsBy = index(gaps, (g) => g.tenant + '\u0000' + g.source);
    const grid = mapGrid(win);
    tenantBlock(grid, { tenant: name, sources }, cov, gapsBy, statusBy, win, watermark, false);
    $('tenant-strips').replaceChildren(grid);
    $('tenant-note').textContent = `last ${state.window}`;

    const rates = await pool(sources, (src) => windowed('rates', { tenant: name, source: src }, range));
    const legendRow = el('div', { class: 'chart-legend' },
      el('span', null, el('i', { class: 'sw events' }), ' events'), el('span', null, el('i', { class: 'sw expected' }), ' expected'),
      el('span', null, el('i', { class: 'sw band' }), ' band'), el('span', null, el('i', { class: 'sw gapspan' }), ' gap'));
    const charts = sources.map((src, i) => rateChart(src, statusBy.get(name + '\u0000' + src), rates[i], gapsBy.get(name + '\u0000' + src) || [], watermark));
    $('tenant-rates').replaceChildren(...(charts.length ? [legendRow, ...charts] : [el('p', { class: 'muted' }, 'No sources seen for this tenant.')]));
    // The legend spans the grid's first row.
    legendRow.style.gridColumn = '1 / -1';

    const sorted = gaps.slice().sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at));
    $('tenant-gap-count').textContent = String(sorted.length);
    $('tenant-gap-count').className = 'count' + (sorted.some((g) => !g.ended_at && !g.planned) ? ' hot' : '');
    $('tenant-gaps').replaceChildren(gapsRes.err ? el('p', { class: 'err' }, gapsRes.err.message)
      : gapTable(sorted, { ended: true, explain: true, empty: 'No gaps in this window.' }));
  }

  // ---------- token ----------

  function tokenForm() {
    $('token-form').hidden = !state.needToken;
    $('forget-token').hidden = !token();
    if (state.needToken) {
      $('token-error').textContent = token() ? 'That token was refused (401).' : '';
    }
  }

  // ---------- navigation ----------

  function readHash() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ''));
    state.tenant = h.get('tenant');
    const w = h.get('w');
    if (w && WINDOWS[w]) state.window = w;
    $('window').value = state.window;
    $('fleet-view').hidden = state.tenant !== null;
    $('tenant-view').hidden = state.tenant === null;
    state.explainSeq++;
    $('tenant-explain').hidden = true;
    $('tenant-explain').replaceChildren();
  }

  function writeHash() {
    const h = new URLSearchParams();
    if (state.tenant !== null) h.set('tenant', state.tenant);
    h.set('w', state.window);
    history.replaceState(null, '', '#' + h.toString());
  }

  function start() {
    legend();
    readHash();
    $('window').addEventListener('change', (e) => {
      state.window = e.target.value;
      writeHash();
      refresh();
    });
    let typing;
    $('filter').addEventListener('input', (e) => {
      state.filter = e.target.value;
      clearTimeout(typing);
      typing = setTimeout(refresh, 250);
    });
    $('back').addEventListener('click', (e) => {
      e.preventDefault();
      location.hash = new URLSearchParams({ w: state.window }).toString();
    });
    window.addEventListener('hashchange', () => {
      readHash();
      window.scrollTo(0, 0);
      refresh();
    });
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const v = $('token').value.trim();
      if (!v) return;
      try {
        sessionStorage.setItem(TOKEN_KEY, v);
      } catch (err) {
        $('token-error').textContent = 'this browser keeps no session storage';
        return;
      }
      $('token').value = '';
      state.needToken = false;
      tokenForm();
      refresh();
    });
    $('forget-token').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      tokenForm();
      refresh();
    });
    refresh();
    setInterval(() => {
      if (!document.hidden) refresh(true);
    }, REFRESH_MS);
  }

  start();
})();
