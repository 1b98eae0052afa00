package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/dashboards/api"
	"github.com/gapwatch/gapwatch/dashboards/web"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// The headless-Chromium tests load the page as a person would, against a
// running gapwatch, and fail on any console error or uncaught exception.
// They run with GAPWATCH_INTEGRATION=1 and a Chromium (Debian: apt-get install
// -y chromium; another binary with GAPWATCH_CHROMIUM=path); without Chromium
// they skip, unless GAPWATCH_REQUIRE_CHROMIUM=1 (make test) makes that a
// failure.

var update = flag.Bool("update", false, "write the screenshots to docs/ (default: the test's temporary folder)")

// story is the demo's scripted silence and how the page is looked at. The
// test takes the first gap the page lists, whichever stream it is on (a demo
// that tells its own story finds gaps of its own), and checks it against the
// API. By default the silence starts 3 minutes in (detection learns a
// baseline for about two minutes first), the wait for a gap is bounded by
// gapWait, and the fleet map is shot as soon as a gap is drawn: about 4½
// minutes in all. With -update, for the pictures in docs/, the silence starts
// 8 minutes in and the shot waits until the hole is minutes wide, so that the
// picture shows healthy minutes before it: about 14 minutes.
type story struct {
	incident, window string
	gapWait, widen   time.Duration
}

func demoStory() story {
	if *update {
		return story{incident: "acme/edr:8m:30m", window: "15m", gapWait: 12 * time.Minute, widen: 4 * time.Minute}
	}
	return story{incident: "acme/edr:3m:15m", window: "30m", gapWait: 6 * time.Minute}
}

func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("GAPWATCH_INTEGRATION") == "" {
		t.Skip("set GAPWATCH_INTEGRATION=1 to load the page in headless Chromium")
	}
	path := os.Getenv("GAPWATCH_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		msg := "no Chromium found (Debian: apt-get install -y chromium; or set GAPWATCH_CHROMIUM)"
		if os.Getenv("GAPWATCH_REQUIRE_CHROMIUM") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// console collects what the page wrote to the console.
type console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// errors returns the errors and uncaught exceptions, minus those allow says
// are expected.
func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.msgs {
		fmt.Fprintf(&b, "%s (%s:%d)\n", m, m.URL, m.Line)
	}
	return b.String()
}

func (c *console) errors(allow func(chromedp.ConsoleMessage) bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if (m.Type == chromedp.ConsoleError || m.IsException()) && (allow == nil || !allow(m)) {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
		}
	}
	return out
}

// browser starts a headless Chromium with a fresh profile and no background
// networking (this machine's network refuses it), and a tab on it.
func browser(t *testing.T) (context.Context, *console) {
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	c := &console{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the browser's console:\n%s", c)
		}
	})
	msgs := chromedp.Console(ctx)                                             // starts the browser
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900))) // a laptop's screen
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return ctx, c
}

// waitFor polls a JavaScript condition until it is true or d has passed.
func waitFor(t *testing.T, ctx context.Context, what, cond string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+cond+")"))
		require.NoError(t, err, what)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
			t.Fatalf("%s: not within %s; the page reads:\n%s", what, d, text)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// screenshot writes what the 1440×900 viewport shows of the page as PNG to
// a temporary folder, or to docs/name with -update.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG")))
	dir := t.TempDir()
	if *update {
		dir = filepath.Join("..", "..", "docs")
	}
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// demo builds gapwatch and runs `gapwatch demo` with a scripted silence, until
// the test ends; it returns the base URL once /readyz answers 200.
func demo(t *testing.T, incident string) string {
	dir := t.TempDir()
	bin := filepath.Join(dir, "gapwatch")
	build := exec.Command("go", "build", "-o", bin, "github.com/gapwatch/gapwatch/cmd/gapwatch")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	addr := freeAddr(t)
	logPath := filepath.Join(dir, "demo.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "demo", "--http-addr", addr, "--incident", incident)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("gapwatch demo output:\n%s", b)
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("gapwatch demo exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gapwatch demo not ready within a minute (last error: %v)", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestCoveragePage runs `gapwatch demo` with a silence scripted a few minutes
// in, opens the page, waits until the gap is drawn in the open-gap list and
// on the fleet map, drills down into the tenant, and takes a screenshot of
// both views. Takes about as long as the demo needs to find the gap
// (five to six minutes).
func TestCoveragePage(t *testing.T) {
	ctx, cons := browser(t)
	st := demoStory()
	base := demo(t, st.incident)
	start := time.Now()

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/#w="+st.window)))
	waitFor(t, ctx, "the fleet map", `document.querySelectorAll('#fleet svg.strip').length >= 30`, time.Minute)
	require.Empty(t, cons.errors(nil), "console errors after the first load")

	waitFor(t, ctx, "the first gap", `document.querySelector('#open-gaps tr[data-gap-id]') && document.querySelector('#fleet svg.strip [data-gap-id]')`, st.gapWait)
	t.Logf("first gap drawn %s after the page loaded", time.Since(start).Round(time.Second))

	// The gap the page lists first is one the API has open, and its marker
	// sits on that stream's strip.
	id := eval[string](t, ctx, `document.querySelector('#open-gaps tr[data-gap-id]').dataset.gapId`)
	gap := openGap(t, base, id)
	row := eval[string](t, ctx, `document.querySelector('#open-gaps tr[data-gap-id]').textContent`)
	require.Contains(t, row, gap.Tenant+"/"+gap.Source)
	require.Equal(t, gap.Tenant+" / "+gap.Source+" coverage", eval[string](t, ctx,
		`document.querySelector('#fleet svg.strip [data-gap-id="'+CSS.escape(`+strconv.Quote(id)+`)+'"]').closest('svg').getAttribute('aria-label')`))
	require.Contains(t, eval[string](t, ctx, `document.getElementById('health').textContent`), "ready")
	time.Sleep(st.widen)
	screenshot(t, ctx, "coverage-page.png")

	// The drill-down, through the tenant's link in the first row (which may
	// be another gap by now: the list is refreshed): a rate chart per source
	// with its band, the gap shaded on its source's chart and listed.
	id = eval[string](t, ctx, `document.querySelector('#open-gaps tr[data-gap-id]').dataset.gapId`)
	gap = openGap(t, base, id)
	sel := `[data-gap-id="'+CSS.escape(` + strconv.Quote(id) + `)+'"]`
	// A click in the page itself: the row cannot be redrawn between finding and clicking it.
	require.True(t, eval[bool](t, ctx, `(document.querySelector('#open-gaps tr`+sel+` a').click(), true)`))
	for _, c := range []struct{ what, cond string }{
		{"the tenant view", `!document.getElementById('tenant-view').hidden && document.querySelector('#tenant-strips svg.strip')`},
		{"a chart per source", `document.querySelectorAll('#tenant-rates .chart').length === document.querySelectorAll('#tenant-strips svg.strip').length`},
		{"every chart's events", `[...document.querySelectorAll('#tenant-rates .chart')].every(c => c.querySelector('polyline'))`},
		{"an expected band", `document.querySelector('#tenant-rates .chart polygon')`},
		{"what each chart is judged against", `[...document.querySelectorAll('#tenant-rates .chart h3')].every(h => /(short-term|hourly|weekly) profile, weekends [a-z]+/.test(h.textContent))`},
		{"the gap on its chart", `document.querySelector('#tenant-rates .chart ` + sel + `')`},
		{"the gap in the tenant's list", `document.querySelector('#tenant-gaps tr` + sel + `')`},
	} {
		waitFor(t, ctx, c.what, c.cond, time.Minute)
	}
	require.Equal(t, gap.Tenant, eval[string](t, ctx, `document.getElementById('tenant-name').textContent`))
	require.Equal(t, gap.Tenant, eval[string](t, ctx, `new URLSearchParams(location.hash.slice(1)).get('tenant')`))
	screenshot(t, ctx, "coverage-page-tenant.png")

	// Why it opened: the row's "why?" replays the detector over the gap
	// (GET /api/v1/explain, up to the ingest watermark, which must have
	// passed the detection) and draws the counts against what they were
	// judged by, the evidence against the threshold, and the gap the replay
	// opened: the live gap's kind and start.
	waitWatermark(t, base, gap.DetectedAt.Add(time.Minute))
	require.True(t, eval[bool](t, ctx, `(document.querySelector('#tenant-gaps tr`+sel+` button.why').click(), true)`))
	for _, c := range []struct{ what, cond string }{
		{"the replay's counts", `document.querySelector('#tenant-explain svg.counts polyline')`},
		{"the replay's evidence and threshold", `document.querySelector('#tenant-explain svg.evidence polyline') && document.querySelector('#tenant-explain svg.evidence line')`},
		{"the live gap reopened by the replay", `(() => {
			const row = document.querySelector('#tenant-gaps tr` + sel + `');
			return [...document.querySelectorAll('#tenant-explain ul.opened li')].some((li) =>
				li.querySelector('.badge').textContent === row.querySelector('.badge').textContent &&
				li.textContent.includes('started ' + row.children[2].textContent + ','));
		})()`},
		{"its test's evidence at or over the threshold", evidenceCrossed(`document.querySelector('#tenant-gaps tr` + sel + ` .badge').textContent`)},
	} {
		waitFor(t, ctx, c.what, c.cond, time.Minute)
	}
	screenshot(t, ctx, "coverage-page-explain.png")

	require.Empty(t, cons.errors(nil), "console errors or exceptions")
}

// evidenceCrossed is a page condition: some bucket of the explanation shows
// the evidence of the test of the kind that kindJS evaluates to (drop,
// silence or late) at 100 % of its threshold or more, as its hover text says.
func evidenceCrossed(kindJS string) string {
	return `(() => {
		const re = {drop: /drop evidence ([\d.]+) %/, silence: /silence ([\d.]+) %/, late: /lateness ([\d.]+) %/}[` + kindJS + `];
		return [...document.querySelectorAll('#tenant-explain svg.evidence rect title')].some((t) => {
			const m = re.exec(t.textContent);
			return m !== null && parseFloat(m[1]) >= 100;
		});
	})()`
}

// liveGap is an open gap as GET /api/v1/gaps lists it.
type liveGap struct {
	Tenant, Source string
	DetectedAt     time.Time `json:"detected_at"`
}

// waitWatermark waits until the API's ingest watermark is at least t.
func waitWatermark(t *testing.T, base string, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/api/v1/status")
		require.NoError(t, err)
		var st struct{ Watermark *time.Time }
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		require.NoError(t, err)
		if st.Watermark != nil && !st.Watermark.Before(at) {
			return
		}
		require.True(t, time.Now().Before(deadline), "the watermark %v did not reach %v", st.Watermark, at)
		time.Sleep(time.Second)
	}
}

// openGap returns the open gap id from the API.
func openGap(t *testing.T, base, id string) (g liveGap) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/gaps?state=open")
	require.NoError(t, err)
	defer resp.Body.Close()
	var gaps []struct {
		ID string
		liveGap
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&gaps))
	for _, x := range gaps {
		if x.ID == id {
			return x.liveGap
		}
	}
	t.Fatalf("the page shows gap %q open; the API's open gaps are %v", id, gaps)
	return g
}

// hostile names: were any of them parsed as markup, the page would gain an
// element or its title would change.
const (
	evilTenant = `<img src=x onerror="document.title='pwned'">`
	evilSource = `"><svg onload="document.title='pwned'"></svg>`
)

type watermarkAt time.Time

func (w watermarkAt) Watermark(context.Context) (time.Time, string, error) {
	return time.Time(w), "", nil
}

type streamList []api.Stream

func (l streamList) Streams(tenant, source string) []api.Stream {
	var out []api.Stream
	for _, s := range l {
		if (tenant == "" || s.Tenant == tenant) && (source == "" || s.Source == source) {
			out = append(out, s)
		}
	}
	return out
}

// fixture is an API over an in-memory store holding twenty minutes of a
// hostile-named stream with a baseline and an open silence, behind a bearer
// token; it records whether any API request came without it after the first
// one with it.
func fixture(t *testing.T, token string) (srv *httptest.Server, unauthorizedAfterToken *atomic.Int32) {
	ctx := context.Background()
	st := memstore.New(0)
	now := time.Now().UTC().Truncate(time.Minute)
	var counts []storage.Count
	var exps []storage.Expectation
	for m := -20; m <= 0; m++ {
		b := now.Add(time.Duration(m) * time.Minute)
		n := uint64(600)
		if m >= -6 {
			n = 0 // silent for the last six minutes
		}
		if n > 0 {
			counts = append(counts, storage.Count{Tenant: evilTenant, Source: evilSource, Clock: storage.Arrival, Bucket: b.Unix(), Events: n},
				storage.Count{Tenant: evilTenant, Source: evilSource, Clock: storage.Event, Bucket: b.Unix(), Events: n, Arrival: b.Unix() + 5})
		}
		if m < -12 || m == 0 {
			continue // learning before, not judged yet now
		}
		state := "ok"
		if n == 0 {
			state = "gap"
		}
		exps = append(exps, storage.Expectation{Tenant: evilTenant, Source: evilSource, Bucket: b.Unix(),
			Expected: 600, Lower: 520, Upper: 680, Observed: n, State: state})
	}
	require.NoError(t, st.Write(ctx, storage.Batch{Counts: counts}))
	require.NoError(t, st.WriteExpectations(ctx, exps))
	started := now.Add(-6 * time.Minute)
	require.NoError(t, st.WriteAlerts(ctx, storage.AlertBatch{
		DetectProgress: storage.DetectProgress{Shards: 1, Seq: 1},
		Alerts: []storage.Alert{{ID: "a1", Type: "io.gapwatch.gap.opened", Time: now, Key: "k", GapID: "gap-1",
			Tenant: evilTenant, Source: evilSource, Kind: "silence", StartedAt: started, DetectedAt: started.Add(2 * time.Minute),
			Expected: 3600, Missing: 3600}},
	}))
	streams := streamList{{Tenant: evilTenant, Source: evilSource, Status: "gap", LastSeen: started, EventsPerMin: 600}}
	h := api.New(api.Config{Bucket: time.Minute, Version: "test", Roles: []string{"api"}}, api.Deps{Rates: st, Gaps: st, Counts: st,
		Streams: streams, Expectations: st, Tenants: st, Watermark: watermarkAt(now), Page: web.Handler()}).Handler()

	var authorized atomic.Bool
	unauthorizedAfterToken = &atomic.Int32{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v1/") {
			if r.Header.Get("Authorization") != "Bearer "+token {
				if authorized.Load() {
					unauthorizedAfterToken.Add(1)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprintln(w, `{"error":"a bearer token is required"}`)
				return
			}
			authorized.Store(true)
			if r.URL.Query().Get("tenant") == "forbidden" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintln(w, `{"error":"token viewer may not read tenant \"forbidden\""}`)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, unauthorizedAfterToken
}

// TestPageTokenAndHostileNames: the API answers 401 until the page sends the
// token typed into its token box, and then on every request; tenant and source
// names full of markup are shown as text; a tenant outside the token (403) is
// said to be so where its data would be; when the API goes away the page says
// so. Takes about ten seconds.
func TestPageTokenAndHostileNames(t *testing.T) {
	ctx, cons := browser(t)
	srv, unauthorized := fixture(t, "s3cret")

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")))
	waitFor(t, ctx, "the token box", `!document.getElementById('token-form').hidden`, 30*time.Second)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-form button`)), // a person's click, which fires the submit event
	))
	waitFor(t, ctx, "the fleet map and the open gap", `document.querySelector('#fleet svg.strip [data-gap-id="gap-1"]') &&
		document.querySelector('#open-gaps tr[data-gap-id="gap-1"]')`, 30*time.Second)
	require.True(t, eval[bool](t, ctx, `document.getElementById('token-form').hidden`))
	require.Equal(t, "s3cret", eval[string](t, ctx, `sessionStorage.getItem('gapwatch.token')`))

	// The names arrive as text: no element was made of them, and they read as sent.
	require.Equal(t, 0, eval[int](t, ctx, `document.querySelectorAll('main img, main svg:not(.strip) svg, #fleet svg svg').length`))
	require.Equal(t, "gapwatch · coverage", eval[string](t, ctx, `document.title`))
	require.Equal(t, evilTenant, eval[string](t, ctx, `document.querySelector('#fleet .tenant-head a').textContent`))
	require.Equal(t, evilSource, eval[string](t, ctx, `document.querySelector('#fleet .src .name').textContent`))
	require.Contains(t, eval[string](t, ctx, `document.querySelector('#open-gaps tr[data-gap-id]').textContent`), evilTenant+"/"+evilSource)
	// The silent minutes are red, the healthy ones blue, the learning ones grey.
	cells := eval[[]string](t, ctx, `[...document.querySelectorAll('#fleet svg.strip rect.cell')].map(r => r.getAttribute('fill'))`)
	require.Contains(t, cells, "#b7122a") // nothing arrived
	require.Contains(t, cells, "#7fb8d6") // all arrived
	require.Contains(t, cells, "#d9dce0") // no baseline

	// The drill-down, through the tenant's link (its name escaped in the hash).
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#fleet .tenant-head a`))))
	waitFor(t, ctx, "the tenant's rate chart", `!document.getElementById('tenant-view').hidden &&
		document.querySelector('#tenant-rates .chart polygon') && document.querySelector('#tenant-rates .chart [data-gap-id="gap-1"]')`, 30*time.Second)
	require.Equal(t, evilTenant, eval[string](t, ctx, `document.getElementById('tenant-name').textContent`))
	require.Equal(t, "gapwatch · coverage", eval[string](t, ctx, `document.title`))

	// Why the gap opened, replayed for the hostile names (with the token):
	// the stream's six silent minutes after fourteen of counts reopen a
	// silence; the names stay text.
	require.True(t, eval[bool](t, ctx, `(document.querySelector('#tenant-gaps tr[data-gap-id="gap-1"] button.why').click(), true)`))
	waitFor(t, ctx, "the replay", `document.querySelector('#tenant-explain svg.counts polyline') &&
		document.querySelector('#tenant-explain ul.opened li .badge.silence')`, 30*time.Second)
	require.NotContains(t, eval[string](t, ctx, `document.getElementById('tenant-explain').textContent`), "null")
	require.True(t, eval[bool](t, ctx, evidenceCrossed(`'silence'`)), "the silence evidence at its threshold")
	require.Equal(t, evilTenant, eval[string](t, ctx, `document.querySelector('#tenant-explain h3 .stream-name').textContent`))
	require.Contains(t, eval[string](t, ctx, `document.querySelector('#tenant-explain h3').textContent`), evilSource)
	require.Equal(t, 0, eval[int](t, ctx, `document.querySelectorAll('main img, #tenant-explain svg svg').length`))
	require.Equal(t, "gapwatch · coverage", eval[string](t, ctx, `document.title`))

	// A tenant outside the token (a hand-made link): the page says so where the data would be.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#tenant=forbidden&w=1h")))
	waitFor(t, ctx, "the refusal", `document.getElementById('tenant-name').textContent === 'forbidden' &&
		document.getElementById('tenant-strips').textContent.includes('may not read this tenant (403)') &&
		document.getElementById('tenant-gaps').textContent.includes('may not read tenant')`, 30*time.Second)
	require.True(t, eval[bool](t, ctx, `document.getElementById('token-form').hidden`))

	require.Zero(t, unauthorized.Load(), "API requests without the token after it was given")
	// The 401s before the token and the 403s are the browser's network log, nothing else.
	require.Empty(t, cons.errors(func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && (strings.Contains(m.Text, "401") || strings.Contains(m.Text, "403"))
	}))

	// The API goes away: the page says so and keeps what it showed.
	srv.CloseClientConnections()
	srv.Close()
	waitFor(t, ctx, "the page noticing", `!document.getElementById('banner').hidden &&
		document.getElementById('health').textContent.includes('API unreachable')`, 30*time.Second)
	require.Equal(t, "forbidden", eval[string](t, ctx, `document.getElementById('tenant-name').textContent`))
	require.Empty(t, cons.errors(func(m chromedp.ConsoleMessage) bool { return m.Source == "network" }))
}
