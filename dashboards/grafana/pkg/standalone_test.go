package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gapwatch/gapwatch/dashboards/grafana/pkg/plugin"
)

// TestStandaloneEndToEnd builds the plugin, runs it in the SDK's standalone
// mode and drives it over gRPC as Grafana does, against a real `gapwatch run`
// on the real Kafka and ClickHouse at default settings: three streams of one
// tenant with 20 minutes of history, then live; one stops, a gap opens, and
// the plugin's health check, resources and every query type show it.
func TestStandaloneEndToEnd(t *testing.T) {
	if os.Getenv("GAPWATCH_INTEGRATION") != "1" {
		t.Skip("needs the real Kafka and ClickHouse: GAPWATCH_INTEGRATION=1 (make services)")
	}
	tmp := t.TempDir()
	suffix := randomHex(4)

	// The plugin executable, in a plugin directory with the plugin.json
	// that standalone mode looks for. The SDK's standalone mode kills every
	// process whose command line matches plugin.json's "executable" (pgrep
	// -f, to make Grafana reconnect): the name here is unique to this run,
	// so it can match nothing but the plugin itself.
	pluginDir := filepath.Join(tmp, "plugin")
	require.NoError(t, os.Mkdir(pluginDir, 0o755))
	exe := "gpx_gapwatch_e2e_" + suffix
	goBuild(t, ".", filepath.Join(pluginDir, exe), "./")
	writePluginJSON(t, pluginDir, exe)
	gapwatch := filepath.Join(tmp, "gapwatch")
	goBuild(t, "../../..", gapwatch, "./cmd/gapwatch")

	// gapwatch on the real servers, in a database and topics of its own.
	brokers := envOr("GAPWATCH_KAFKA_BROKERS", "127.0.0.1:9092")
	topic := "plugin_e2e_logs_" + suffix
	createTopic(t, brokers, topic, 3)
	apiAddr := freeAddr(t)
	db := "gapwatch_plugin_e2e_" + suffix
	env := append(os.Environ(),
		"GAPWATCH_KAFKA_BROKERS="+brokers,
		"GAPWATCH_CLICKHOUSE_ADDR="+envOr("GAPWATCH_CLICKHOUSE_ADDR", "127.0.0.1:9000"),
		"GAPWATCH_CLICKHOUSE_DATABASE="+db,
		"GAPWATCH_INPUT_TOPICS="+topic,
		"GAPWATCH_GROUP=plugin_e2e_"+suffix,
		"GAPWATCH_ALERTS_TOPIC=plugin_e2e_alerts_"+suffix,
		"GAPWATCH_HTTP_ADDR="+apiAddr,
	)
	t.Cleanup(func() { dropDatabase(t, db) })
	out, err := command(gapwatch, env, "migrate").CombinedOutput()
	require.NoError(t, err, "gapwatch migrate: %s", out)

	// The API behind a token (CONTRACT.md "Secure connections and API
	// access"), as the compose stack runs it for Grafana.
	token := "e2e-token-" + randomHex(8)
	cfgFile := filepath.Join(tmp, "gapwatch.yaml")
	sum := sha256.Sum256([]byte(token))
	require.NoError(t, os.WriteFile(cfgFile, fmt.Appendf(nil,
		"http:\n  tokens:\n    - {name: grafana, sha256: %s, tenants: [\"*\"]}\n", hex.EncodeToString(sum[:])), 0o600))
	out, err = command(gapwatch, env, "check-config", "--config", cfgFile).CombinedOutput()
	require.NoError(t, err, "gapwatch check-config with http.tokens: %s", out)
	runArgs := []string{"--config", cfgFile}

	// Twenty minutes of history (record timestamps in the past: the arrival
	// clock follows them), so the streams are past learning; then live.
	streams := []string{"firewall", "edr", "dns"}
	w := &kafka.Writer{Addr: kafka.TCP(brokers), Topic: topic, Balancer: &kafka.RoundRobin{}, // every partition moves the watermark
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond}
	t.Cleanup(func() { w.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	var history []kafka.Message
	for at := now.Add(-20 * time.Minute); at.Before(now); at = at.Add(time.Second) {
		for _, s := range streams {
			history = append(history, message(s, at))
		}
	}
	writeMessages(t, w, history...)
	live := newProducer(t, w, streams)
	run := start(t, "gapwatch run", command(gapwatch, env, append([]string{"run"}, runArgs...)...))
	apiURL := "http://" + apiAddr
	waitFor(t, 3*time.Minute, "gapwatch /readyz", func() bool {
		resp, err := http.Get(apiURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, run)

	// The plugin in standalone mode, as `-standalone` with the address from
	// GF_PLUGIN_GRPC_ADDRESS_<ID>.
	grpcAddr := freeAddr(t)
	pl := command(filepath.Join(pluginDir, exe), append(os.Environ(),
		"GF_PLUGIN_GRPC_ADDRESS_GAPWATCH_COVERAGE_DATASOURCE="+grpcAddr), "-standalone")
	pl.Dir = pluginDir
	pluginOut := start(t, "plugin", pl)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	g := grafana{t: t, data: pluginv2.NewDataClient(conn), res: pluginv2.NewResourceClient(conn), diag: pluginv2.NewDiagnosticsClient(conn)}

	gw := dsContext(1, apiURL, token)
	waitFor(t, 30*time.Second, "the plugin's gRPC server", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := g.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: gw})
		return err == nil
	}, pluginOut)

	hasTenants := apiHas(t, apiURL+"/api/v1/tenants", token)
	hasStatus := apiHas(t, apiURL+"/api/v1/status", token)

	// Live for a minute, then firewall stops; the gap opens a minute or two later.
	time.Sleep(time.Minute)
	live.stop("firewall")
	rng := func() *pluginv2.TimeRange {
		now := time.Now()
		return &pluginv2.TimeRange{FromEpochMS: now.Add(-30 * time.Minute).UnixMilli(), ToEpochMS: now.Add(time.Minute).UnixMilli()}
	}
	var gaps *data.Frame
	waitFor(t, 4*time.Minute, "an open gap of acme/firewall through the plugin", func() bool {
		f := g.query(gw, "gaps", map[string]any{"tenant": "acme", "source": "firewall", "state": "open"}, rng(), 10*time.Second)
		if f[0].Rows() > 0 {
			gaps = f[0]
			return true
		}
		return false
	}, run)

	t.Run("gaps", func(t *testing.T) {
		require.Equal(t, []string{"started_at", "detected_at", "ended_at", "tenant", "source", "kind", "expected_events", "missing_events", "id"}, names(gaps))
		require.Nil(t, gaps.Fields[2].At(0), "ended_at null while open")
		require.Equal(t, "firewall", gaps.Fields[4].At(0))
		require.Equal(t, "silence", gaps.Fields[5].At(0))
		require.Positive(t, gaps.Fields[6].At(0).(int64), "expected events")
		require.NotEmpty(t, gaps.Fields[8].At(0), "id")
		all := g.query(gw, "gaps", map[string]any{}, rng(), 0)
		require.GreaterOrEqual(t, all[0].Rows(), 1)
	})
	t.Run("rates", func(t *testing.T) {
		frames := g.query(gw, "rates", map[string]any{"tenant": "acme", "source": "firewall"}, rng(), 10*time.Second)
		require.Len(t, frames, 1)
		f := frames[0]
		require.Equal(t, []string{"time", "events", "expected", "lower", "upper"}, names(f))
		var total float64
		var banded int
		for i := range f.Rows() {
			total += f.Fields[1].At(i).(float64)
			if f.Fields[2].At(i) != nil {
				banded++
			}
		}
		require.Positive(t, total, "events before the stop")
		require.Positive(t, banded, "the expected band once learned")
		require.Nil(t, f.Fields[2].At(0), "no band half an hour back, before the stream existed")
	})
	t.Run("explain", func(t *testing.T) {
		// The stopped stream replayed from its stored counts up to the
		// ingest watermark: once the watermark has passed the bucket the
		// silence was detected in (live detection opens it at a slot inside
		// that bucket; the replay judges whole buckets), the replay reopens
		// it at the same start, and its evidence crossed.
		started := gaps.Fields[0].At(0).(time.Time).UTC().Format(time.RFC3339)
		var f *data.Frame
		var notices []string
		waitFor(t, 2*time.Minute, "the replay reopening the live silence (started "+started+")", func() bool {
			frames := g.query(gw, "explain", map[string]any{"tenant": "acme", "source": "firewall"}, rng(), 0)
			require.Len(t, frames, 1)
			f, notices = frames[0], nil
			for _, n := range f.Meta.Notices {
				notices = append(notices, n.Text)
			}
			return slices.ContainsFunc(notices, func(s string) bool { return strings.HasPrefix(s, "silence opened: started "+started+",") })
		}, run)
		require.Equal(t, []string{"time", "observed", "expected", "judged", "state", "drop_share", "silence_share", "late_share",
			"drop50", "drop75", "rank", "drop_threshold", "silence_logp", "silence_threshold", "late", "late_threshold"}, names(f))
		require.Len(t, slices.DeleteFunc(notices, func(s string) bool { return !strings.Contains(s, " opened: ") }), 1,
			"one gap opened in the replay: %q", notices)
		var crossed bool
		for i := range f.Rows() {
			crossed = crossed || f.Fields[6].At(i).(float64) >= 1
		}
		require.True(t, crossed, "the silence evidence reached its threshold")
	})
	t.Run("streams", func(t *testing.T) {
		// The status view follows the judged buckets: it may trail the gap's
		// record by a step.
		var status map[string]string
		waitFor(t, time.Minute, "firewall's status gap", func() bool {
			f := g.query(gw, "streams", map[string]any{"tenant": "acme"}, rng(), 0)[0]
			require.Equal(t, []string{"tenant", "source", "status", "last_seen", "events_per_min", "profile", "weekend"}, names(f))
			status = map[string]string{}
			for i := range f.Rows() {
				status[f.Fields[1].At(i).(string)] = f.Fields[2].At(i).(string)
				require.Contains(t, []string{"short-term", "hourly", "weekly"}, f.Fields[5].At(i), "what the detector judged against")
			}
			return status["firewall"] == "gap"
		}, run)
		require.Equal(t, "ok", status["edr"], "%v", status)
	})
	t.Run("coverage", func(t *testing.T) {
		if !hasTenants {
			t.Skip("this gapwatch has no /api/v1/tenants yet (api-report); coverage needs it")
		}
		// The gap opens inside the stream's first empty bucket (early
		// silence); the bucket's share is stored when it is judged, at its end:
		// poll for up to two buckets.
		var sawFull, sawHole bool
		var shares []string
		for deadline := time.Now().Add(150 * time.Second); ; time.Sleep(5 * time.Second) {
			f := g.query(gw, "coverage", map[string]any{"tenant": "acme"}, rng(), 10*time.Second)[0]
			require.Equal(t, "time", f.Fields[0].Name)
			var fw *data.Field
			for _, fd := range f.Fields[1:] {
				require.Equal(t, "share", fd.Name)
				require.Equal(t, "acme", fd.Labels["tenant"])
				if fd.Labels["source"] == "firewall" {
					fw = fd
				}
			}
			require.NotNil(t, fw, "a share field for acme/firewall")
			sawFull, sawHole, shares = false, false, shares[:0]
			for i := range fw.Len() {
				if v, ok := fw.At(i).(*float64); ok && v != nil {
					sawFull = sawFull || *v >= 0.9
					sawHole = sawHole || *v == 0
					shares = append(shares, fmt.Sprintf("%.2f", *v))
				} else {
					shares = append(shares, "null")
				}
			}
			if sawFull && sawHole || time.Now().After(deadline) {
				break
			}
		}
		require.True(t, sawFull && sawHole, "covered before the stop, a hole after: shares %v", shares)
	})
	t.Run("resources", func(t *testing.T) {
		if !hasTenants {
			t.Skip("this gapwatch has no /api/v1/tenants yet (api-report)")
		}
		code, body := g.resource(gw, "tenants")
		require.Equal(t, 200, code, body)
		var tenants []string
		require.NoError(t, json.Unmarshal([]byte(body), &tenants))
		require.Contains(t, tenants, "acme")
		code, body = g.resource(gw, "sources?tenant=acme")
		require.Equal(t, 200, code, body)
		var sources []string
		require.NoError(t, json.Unmarshal([]byte(body), &sources))
		require.ElementsMatch(t, streams, sources)
	})
	t.Run("health", func(t *testing.T) {
		if hasStatus && hasTenants {
			status, msg := g.health(gw)
			require.Equal(t, pluginv2.CheckHealthResponse_OK, status, msg)
			t.Logf("health: %s", msg)
			require.Contains(t, msg, "gapwatch ")
			require.Contains(t, msg, "behind")
		} else {
			t.Log("this gapwatch has no /api/v1/status yet (api-report): the OK case is not checked")
		}
		status, msg := g.health(dsContext(2, "http://"+freeAddr(t), token))
		require.Equal(t, pluginv2.CheckHealthResponse_ERROR, status)
		require.Contains(t, msg, "cannot connect to gapwatch at http://127.0.0.1:")
		status, msg = g.health(dsContext(3, "http://"+apiAddr+"/not-gapwatch", token))
		require.Equal(t, pluginv2.CheckHealthResponse_ERROR, status)
		require.Contains(t, msg, "HTTP 404")
		status, msg = g.health(dsContext(4, apiURL, "not-"+token))
		require.Equal(t, pluginv2.CheckHealthResponse_ERROR, status)
		require.Contains(t, msg, "refused the API token (HTTP 401)")
	})
	t.Run("per-query errors", func(t *testing.T) {
		resp := g.queryData(dsContext(5, "http://"+freeAddr(t), token), rng(),
			&pluginv2.DataQuery{RefId: "A", QueryType: "gaps", Json: []byte(`{"queryType":"gaps"}`)})
		require.Contains(t, resp.Responses["A"].Error, "cannot connect")
		require.Equal(t, "downstream", resp.Responses["A"].ErrorSource)
	})
	require.NotContains(t, pluginOut.String(), token, "the token is in the plugin's output")
}

// message is one Azure diagnostic envelope of stream's, 5 records at at.
func message(stream string, at time.Time) kafka.Message {
	recs := make([]string, 5)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"tenantId":"acme","category":%q,"time":%q}`, stream, at.Format(time.RFC3339Nano))
	}
	return kafka.Message{Key: []byte(stream), Value: []byte(`{"records":[` + strings.Join(recs, ",") + `]}`), Time: at}
}

func writeMessages(t *testing.T, w *kafka.Writer, msgs ...kafka.Message) {
	t.Helper()
	for len(msgs) > 0 {
		n := min(len(msgs), 1000)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		require.NoError(t, w.WriteMessages(ctx, msgs[:n]...))
		cancel()
		msgs = msgs[n:]
	}
}

// producer sends each active stream's message every second until the test ends.
type producer struct {
	mu     sync.Mutex
	active map[string]bool
}

func newProducer(t *testing.T, w *kafka.Writer, streams []string) *producer {
	p := &producer{active: map[string]bool{}}
	for _, s := range streams {
		p.active[s] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-tick.C:
				var msgs []kafka.Message
				p.mu.Lock()
				for _, s := range streams {
					if p.active[s] {
						msgs = append(msgs, message(s, at.UTC()))
					}
				}
				p.mu.Unlock()
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				if err := w.WriteMessages(wctx, msgs...); err != nil && ctx.Err() == nil {
					t.Logf("producing: %v", err)
				}
				wcancel()
			}
		}
	})
	return p
}

func (p *producer) stop(stream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active[stream] = false
}

func createTopic(t *testing.T, brokers, name string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 20 * time.Second}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}})
	require.NoError(t, err, "creating topic %s", name)
	require.NoError(t, resp.Errors[name], "creating topic %s", name)
}

// grafana drives the plugin as Grafana does, over its gRPC services.
type grafana struct {
	t    *testing.T
	data pluginv2.DataClient
	res  pluginv2.ResourceClient
	diag pluginv2.DiagnosticsClient
}

func dsContext(id int64, apiURL, token string) *pluginv2.PluginContext {
	return &pluginv2.PluginContext{OrgId: 1, PluginId: plugin.ID, DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{
		Id: id, Uid: fmt.Sprintf("gw%d", id), Name: "gapwatch", Url: apiURL, JsonData: []byte(`{"bucket":"1m"}`),
		DecryptedSecureJsonData: map[string]string{"apiToken": token}, LastUpdatedMS: 1,
	}}
}

func (g grafana) queryData(pc *pluginv2.PluginContext, tr *pluginv2.TimeRange, qs ...*pluginv2.DataQuery) *pluginv2.QueryDataResponse {
	g.t.Helper()
	for _, q := range qs {
		q.TimeRange = tr
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := g.data.QueryData(ctx, &pluginv2.QueryDataRequest{PluginContext: pc, Queries: qs})
	require.NoError(g.t, err)
	return resp
}

func (g grafana) query(pc *pluginv2.PluginContext, queryType string, model map[string]any, tr *pluginv2.TimeRange, interval time.Duration) data.Frames {
	g.t.Helper()
	model["queryType"] = queryType
	b, err := json.Marshal(model)
	require.NoError(g.t, err)
	resp := g.queryData(pc, tr, &pluginv2.DataQuery{RefId: "A", QueryType: queryType, Json: b, IntervalMS: interval.Milliseconds(), MaxDataPoints: 1000})
	r := resp.Responses["A"]
	require.NotNil(g.t, r)
	require.Empty(g.t, r.Error, "query %s %s", queryType, b)
	frames, err := data.UnmarshalArrowFrames(r.Frames)
	require.NoError(g.t, err)
	require.NotEmpty(g.t, frames)
	return frames
}

func (g grafana) resource(pc *pluginv2.PluginContext, path string) (int, string) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, _, _ := strings.Cut(path, "?")
	stream, err := g.res.CallResource(ctx, &pluginv2.CallResourceRequest{PluginContext: pc, Method: "GET", Path: p, Url: path})
	require.NoError(g.t, err)
	var code int
	var body bytes.Buffer
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(g.t, err)
		if r.Code != 0 {
			code = int(r.Code)
		}
		body.Write(r.Body)
	}
	return code, strings.TrimSpace(body.String())
}

func (g grafana) health(pc *pluginv2.PluginContext) (pluginv2.CheckHealthResponse_HealthStatus, string) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := g.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pc})
	require.NoError(g.t, err, "a health answer, not a gRPC error")
	return r.Status, r.Message
}

func names(f *data.Frame) []string {
	var out []string
	for _, fd := range f.Fields {
		out = append(out, fd.Name)
	}
	return out
}

// apiHas reports whether gapwatch serves path (anything but 404).
func apiHas(t *testing.T, u, token string) bool {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound
}

func goBuild(t *testing.T, dir, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s in %s: %s", pkg, dir, b)
}

// writePluginJSON writes the plugin.json standalone mode needs: the plugin's
// id, with this run's executable name.
func writePluginJSON(t *testing.T, dir, exe string) {
	b, err := json.Marshal(map[string]any{"type": "datasource", "id": plugin.ID, "name": "gapwatch", "backend": true,
		"alerting": true, "executable": exe})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plugin.json"), b, 0o644))
}

func command(name string, env []string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Env = env
	return c
}

// output collects a child's stdout and stderr.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// start starts c and stops it (SIGTERM, then SIGKILL) when the test ends,
// showing its output if the test failed.
func start(t *testing.T, name string, c *exec.Cmd) *output {
	t.Helper()
	out := &output{}
	c.Stdout, c.Stderr = out, out
	require.NoError(t, c.Start(), name)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(out.String(), 6000))
		}
	})
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool, logs *output) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; output:\n%s", what, timeout, tail(logs.String(), 4000))
		}
		time.Sleep(time.Second)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// dropDatabase drops the test's database over ClickHouse's HTTP interface.
func dropDatabase(t *testing.T, db string) {
	u := "http://" + envOr("GAPWATCH_CLICKHOUSE_HTTP", "127.0.0.1:8123") + "/?query=" + url.QueryEscape("DROP DATABASE IF EXISTS `"+db+"`")
	resp, err := http.Post(u, "text/plain", nil)
	if err != nil {
		t.Logf("dropping %s: %v", db, err)
		return
	}
	resp.Body.Close()
}
