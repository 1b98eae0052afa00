package deploy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/gapwatch/gapwatch/config"
)

// No Docker engine runs where these tests run, so they load docker-compose.yml with compose-go
// (the library behind `docker compose`) and check the properties that could really break:
// interpolation, secrets only from the environment, loopback-only ports, pinned images, a
// gapwatch configuration that gapwatch accepts, and a start order that can complete.

const (
	composeFile = "../docker-compose.yml"
	envExample  = "compose.env.example"
	dockerfile  = "Dockerfile"
)

// secrets are the variables that must come from the environment (`${VAR:?...}`), with values
// recognisable in the loaded project.
var secrets = map[string]string{
	"GAPWATCH_CLICKHOUSE_PASSWORD": "test-clickhouse-password-5b1e",
	"GRAFANA_ADMIN_PASSWORD":       "test-grafana-password-c70a",
	"GAPWATCH_GRAFANA_TOKEN":       "test-grafana-token-9d3e",
}

// gapwatchEnvNames are the GAPWATCH_* variables gapwatch reads: config.Load's applyEnv, plus
// GAPWATCH_LOG_LEVEL read by the command's logger.
var gapwatchEnvNames = []string{
	"GAPWATCH_KAFKA_BROKERS", "GAPWATCH_INPUT_TOPICS", "GAPWATCH_GROUP", "GAPWATCH_ALERTS_TOPIC",
	"GAPWATCH_STORE", "GAPWATCH_CLICKHOUSE_ADDR", "GAPWATCH_CLICKHOUSE_DATABASE",
	"GAPWATCH_CLICKHOUSE_USER", "GAPWATCH_CLICKHOUSE_PASSWORD", "GAPWATCH_HTTP_ADDR",
	"GAPWATCH_BUCKET", "GAPWATCH_LOG_LEVEL",
}

// The services that run gapwatch itself.
var gapwatchServices = []string{"gapwatch", "gapwatch-migrate", "simulate"}

// gapwatchConfig is where the gapwatch service reads its YAML (the API tokens).
const gapwatchConfig = "/etc/gapwatch/gapwatch.yaml"

func testEnv() map[string]string {
	env := map[string]string{}
	for k, v := range secrets {
		env[k] = v
	}
	return env
}

// load loads the compose file with exactly env as the interpolation environment: neither the
// process environment nor a .env file is read, so the test sees what a user with only these
// variables would get.
func load(t *testing.T, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	wd, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(wd),
		cli.WithEnv(kv),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// mustLoad loads with the test secrets and the demo profile, so every service is enabled.
func mustLoad(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(t, testEnv(), "demo")
	if err != nil {
		t.Fatalf("loading %s: %v", composeFile, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("no service %q (have %v)", name, p.ServiceNames())
	}
	return s
}

func env(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestComposeLoads(t *testing.T) {
	p := mustLoad(t)
	want := []string{"clickhouse", "gapwatch", "gapwatch-migrate", "gapwatch-token", "grafana", "kafka", "kafka-init", "prometheus", "simulate"}
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	if p.Name != "gapwatch" {
		t.Errorf("project name = %q, want gapwatch", p.Name)
	}
}

func TestSimulateOnlyInDemoProfile(t *testing.T) {
	p, err := load(t, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Services["simulate"]; ok {
		t.Error("simulate runs without --profile demo")
	}
	if _, ok := p.DisabledServices["simulate"]; !ok {
		t.Error("simulate is not a (disabled) service without the demo profile")
	}
}

// requiredVars lists the variables that the compose file requires with ${VAR:?...}.
func requiredVars(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):\?`)
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(readFile(t, composeFile), -1) {
		seen[m[1]] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSecretsAreRequiredWithoutDefaults(t *testing.T) {
	required := requiredVars(t)
	var want []string
	for k := range secrets {
		want = append(want, k)
	}
	sort.Strings(want)
	if !slices.Equal(required, want) {
		t.Fatalf("variables required with ${VAR:?}: %v, want %v (update the test's secrets and compose.env.example together)", required, want)
	}
	for _, name := range required {
		for _, mode := range []string{"unset", "empty"} {
			e := testEnv()
			if mode == "unset" {
				delete(e, name)
			} else {
				e[name] = ""
			}
			_, err := load(t, e, "demo")
			if err == nil {
				t.Errorf("loading with %s %s succeeded; want a required-variable error", name, mode)
			} else if !strings.Contains(err.Error(), name) {
				t.Errorf("loading with %s %s: error %q does not name the variable", name, mode, err)
			}
		}
	}
	// Also when only the non-demo services are enabled (the passwords are used there too).
	for _, name := range required {
		e := testEnv()
		delete(e, name)
		if _, err := load(t, e); err == nil {
			t.Errorf("loading without %s and without profiles succeeded", name)
		}
	}
}

// No literal credentials: every password, secret or token in any service's environment is one
// of the values the test supplied through the environment.
func TestNoLiteralCredentials(t *testing.T) {
	p := mustLoad(t)
	sentinels := map[string]bool{}
	for _, v := range secrets {
		sentinels[v] = true
	}
	sensitive := regexp.MustCompile(`(?i)PASSWORD|SECRET|TOKEN|API_KEY|CREDENTIAL`)
	checked := 0
	for _, s := range p.Services {
		for k, v := range env(s) {
			if !sensitive.MatchString(k) {
				continue
			}
			checked++
			if !sentinels[v] {
				t.Errorf("%s: %s = %q is not taken from the environment", s.Name, k, v)
			}
		}
	}
	if checked < 5 {
		t.Errorf("found only %d credential variables; expected ClickHouse's, gapwatch's, Grafana's and the API token twice", checked)
	}
}

func envExampleVars(t *testing.T) (set map[string]string, mentioned map[string]bool) {
	t.Helper()
	set, mentioned = map[string]string{}, map[string]bool{}
	line := regexp.MustCompile(`^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)
	sc := bufio.NewScanner(strings.NewReader(readFile(t, envExample)))
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		mentioned[m[2]] = true
		if m[1] == "" {
			set[m[2]] = m[3]
		}
	}
	return set, mentioned
}

func TestEnvExample(t *testing.T) {
	set, mentioned := envExampleVars(t)
	for _, name := range requiredVars(t) {
		v, ok := set[name]
		if !ok {
			t.Errorf("%s: required variable %s is not listed (uncommented)", envExample, name)
		}
		if v != "" {
			t.Errorf("%s: %s has a value; the example must hold no secret", envExample, name)
		}
	}
	// Every variable the compose file interpolates is documented in the example.
	re := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)
	for _, m := range re.FindAllStringSubmatch(readFile(t, composeFile), -1) {
		if !mentioned[m[1]] {
			t.Errorf("%s does not mention %s, which docker-compose.yml uses", envExample, m[1])
		}
	}
	// Copied as is, the example must not start a stack with empty passwords.
	if _, err := load(t, set, "demo"); err == nil {
		t.Errorf("the unfilled %s loads; empty passwords must be refused", envExample)
	}
}

func TestPublishedPortsOnLoopbackOnly(t *testing.T) {
	p := mustLoad(t)
	published := map[string][]string{}
	for _, s := range p.Services {
		if s.NetworkMode == "host" {
			t.Errorf("%s: network_mode host bypasses the loopback-only port bindings", s.Name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on host_ip %q, want 127.0.0.1", s.Name, port.Target, port.HostIP)
			}
			if port.Published == "" {
				t.Errorf("%s: port %d published on a random host port", s.Name, port.Target)
			}
			published[s.Name] = append(published[s.Name], port.Published+":"+itoa(port.Target))
		}
	}
	want := map[string][]string{
		"kafka":      {"9092:9092"},
		"clickhouse": {"9000:9000", "8123:8123"},
		"gapwatch":   {"8080:8080"},
		"grafana":    {"3000:3000"},
	}
	for name, w := range want {
		if !slices.Equal(published[name], w) {
			t.Errorf("%s publishes %v, want %v", name, published[name], w)
		}
	}
	// Prometheus has no authentication: only Grafana reaches it, on the compose network.
	if ports := service(t, p, "prometheus").Ports; len(ports) != 0 {
		t.Errorf("prometheus publishes %v; it must publish nothing", ports)
	}
	for name := range published {
		if _, ok := want[name]; !ok {
			t.Errorf("%s publishes ports %v; no such port is expected", name, published[name])
		}
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func TestImagesPinned(t *testing.T) {
	p := mustLoad(t)
	for _, s := range p.Services {
		if s.Build != nil {
			// Built locally: never pulled, so a registry image of the same name cannot stand in.
			if s.PullPolicy != types.PullPolicyBuild {
				t.Errorf("%s: pull_policy %q, want build", s.Name, s.PullPolicy)
			}
			root, _ := filepath.Abs("..")
			if s.Build.Context != root {
				t.Errorf("%s: build context %q, want the repository root %q", s.Name, s.Build.Context, root)
			}
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: dockerfile: %v", s.Name, err)
			}
			continue
		}
		img := s.Image
		if img == "" {
			t.Errorf("%s: no image", s.Name)
			continue
		}
		if strings.Contains(img, "@sha256:") {
			continue
		}
		slash := strings.LastIndex(img, "/")
		colon := strings.LastIndex(img, ":")
		if colon < slash+1 {
			t.Errorf("%s: image %q has no tag", s.Name, img)
			continue
		}
		tag := img[colon+1:]
		if tag == "latest" || !regexp.MustCompile(`^v?\d+\.\d+`).MatchString(tag) {
			t.Errorf("%s: image %q is not pinned to a version", s.Name, img)
		}
	}
}

func TestGapwatchEnvironment(t *testing.T) {
	p := mustLoad(t)
	ch := env(service(t, p, "clickhouse"))
	for _, name := range gapwatchServices {
		s := service(t, p, name)
		e := env(s)
		for k := range e {
			if strings.HasPrefix(k, "GAPWATCH_") && !slices.Contains(gapwatchEnvNames, k) {
				t.Errorf("%s: %s is not a variable gapwatch reads", name, k)
			}
		}
		getenv := func(k string) string { return e[k] }
		cfg, err := config.Load("", getenv)
		if err != nil {
			t.Errorf("%s: config.Load rejects the service's environment: %v", name, err)
			continue
		}
		// The brokers are the Kafka service's in-network listener.
		if got := strings.Join(cfg.Kafka.Brokers, ","); got != "kafka:19092" {
			t.Errorf("%s: brokers %s, want kafka:19092", name, got)
		}
		if name == "simulate" {
			continue
		}
		if cfg.Store != "clickhouse" || cfg.ClickHouse.Addr != "clickhouse:9000" {
			t.Errorf("%s: store %s at %s, want clickhouse at clickhouse:9000", name, cfg.Store, cfg.ClickHouse.Addr)
		}
		if cfg.ClickHouse.Password != secrets["GAPWATCH_CLICKHOUSE_PASSWORD"] || cfg.ClickHouse.Password != ch["CLICKHOUSE_PASSWORD"] {
			t.Errorf("%s: ClickHouse password is not the one the clickhouse service is given", name)
		}
		if cfg.ClickHouse.User != ch["CLICKHOUSE_USER"] || cfg.ClickHouse.User == "" {
			t.Errorf("%s: ClickHouse user %q, the clickhouse service creates %q", name, cfg.ClickHouse.User, ch["CLICKHOUSE_USER"])
		}
	}

	// The API listens on all interfaces inside its container (published on loopback only), on
	// the port that is published and health-checked.
	s := service(t, p, "gapwatch")
	cfg, err := config.Load("", func(k string) string { return env(s)[k] })
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil || host != "0.0.0.0" {
		t.Fatalf("GAPWATCH_HTTP_ADDR %q: want 0.0.0.0:PORT inside the container", cfg.HTTP.Addr)
	}
	if len(s.Ports) != 1 || itoa(s.Ports[0].Target) != port {
		t.Errorf("gapwatch publishes %v, want the API port %s", s.Ports, port)
	}
	if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "127.0.0.1:"+port+"/readyz") {
		t.Errorf("gapwatch healthcheck does not probe /readyz on port %s", port)
	}
	if !slices.Equal([]string(s.Command), []string{"run", "--config", gapwatchConfig}) || !slices.Equal([]string(service(t, p, "gapwatch-migrate").Command), []string{"migrate"}) {
		t.Errorf("commands: gapwatch %v, gapwatch-migrate %v", s.Command, service(t, p, "gapwatch-migrate").Command)
	}
}

// A user name set in the environment reaches both ClickHouse (which creates the account) and gapwatch.
func TestClickHouseUserFromEnvironment(t *testing.T) {
	e := testEnv()
	e["GAPWATCH_CLICKHOUSE_USER"] = "audit_reader"
	p, err := load(t, e, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if got := env(service(t, p, "clickhouse"))["CLICKHOUSE_USER"]; got != "audit_reader" {
		t.Errorf("clickhouse: CLICKHOUSE_USER = %q, want audit_reader", got)
	}
	for _, name := range []string{"gapwatch", "gapwatch-migrate"} {
		if got := env(service(t, p, name))["GAPWATCH_CLICKHOUSE_USER"]; got != "audit_reader" {
			t.Errorf("%s: GAPWATCH_CLICKHOUSE_USER = %q, want audit_reader", name, got)
		}
	}
}

func TestKafka(t *testing.T) {
	p := mustLoad(t)
	k := service(t, p, "kafka")
	e := env(k)
	protocols := map[string]bool{}
	for _, pair := range strings.Split(e["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
		name, _, _ := strings.Cut(pair, ":")
		protocols[name] = true
	}
	listeners := map[string]string{} // name -> host:port
	for _, kind := range []string{"KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS"} {
		for _, l := range strings.Split(e[kind], ",") {
			name, addr, ok := strings.Cut(l, "://")
			if !ok || !protocols[name] {
				t.Errorf("%s: listener %q has no security protocol in the map", kind, l)
			}
			if kind == "KAFKA_ADVERTISED_LISTENERS" {
				listeners[name] = addr
			}
		}
	}
	if listeners["PLAINTEXT"] != "kafka:19092" {
		t.Errorf("in-network listener advertised as %q, want kafka:19092 (what gapwatch uses)", listeners["PLAINTEXT"])
	}
	if listeners["PLAINTEXT_HOST"] != "127.0.0.1:9092" {
		t.Errorf("host listener advertised as %q, want 127.0.0.1:9092 (the published port)", listeners["PLAINTEXT_HOST"])
	}
	if _, ok := listeners[e["KAFKA_CONTROLLER_LISTENER_NAMES"]]; ok {
		t.Error("the controller listener is advertised to clients")
	}
	if e["KAFKA_PROCESS_ROLES"] != "broker,controller" || e["CLUSTER_ID"] == "" || e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] != "1" {
		t.Error("kafka is not a single combined KRaft node with replication factor 1")
	}
	if !mountsVolume(p, k, e["KAFKA_LOG_DIRS"]) {
		t.Errorf("KAFKA_LOG_DIRS %q is not on a named volume", e["KAFKA_LOG_DIRS"])
	}

	// kafka-init creates the topics gapwatch reads and writes, on the same listener.
	script := strings.Join(service(t, p, "kafka-init").Command, " ")
	g := env(service(t, p, "gapwatch"))
	for _, topic := range append(strings.Split(g["GAPWATCH_INPUT_TOPICS"], ","), g["GAPWATCH_ALERTS_TOPIC"]) {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(topic) + `(\s|;)`).MatchString(script) {
			t.Errorf("kafka-init does not create topic %q", topic)
		}
	}
	if !strings.Contains(script, "--bootstrap-server "+g["GAPWATCH_KAFKA_BROKERS"]) {
		t.Errorf("kafka-init does not use gapwatch's brokers %s", g["GAPWATCH_KAFKA_BROKERS"])
	}
	// $$topic in the file must reach the shell as $topic, not be interpolated away by compose.
	if !strings.Contains(script, `"$topic"`) {
		t.Errorf("kafka-init's loop variable was interpolated by compose: %s", script)
	}
}

func mountsVolume(p *types.Project, s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			_, ok := p.Volumes[v.Source]
			return ok
		}
	}
	return false
}

func TestDataOnNamedVolumes(t *testing.T) {
	p := mustLoad(t)
	for name, target := range map[string]string{
		"kafka":      "/var/lib/kafka/data",
		"clickhouse": "/var/lib/clickhouse",
		"grafana":    "/var/lib/grafana",
	} {
		if !mountsVolume(p, service(t, p, name), target) {
			t.Errorf("%s: %s is not on a named volume", name, target)
		}
	}
}

func TestClickHouseRequiresPassword(t *testing.T) {
	p := mustLoad(t)
	e := env(service(t, p, "clickhouse"))
	// The image's entrypoint drops the passwordless default user whenever a password is set.
	if e["CLICKHOUSE_PASSWORD"] != secrets["GAPWATCH_CLICKHOUSE_PASSWORD"] {
		t.Error("clickhouse: CLICKHOUSE_PASSWORD is not the required variable")
	}
	if e["CLICKHOUSE_USER"] == "" {
		t.Error("clickhouse: no CLICKHOUSE_USER")
	}
	if _, ok := e["CLICKHOUSE_SKIP_USER_SETUP"]; ok {
		t.Error("clickhouse: CLICKHOUSE_SKIP_USER_SETUP would keep the passwordless default user")
	}
}

func TestGrafanaLockedDown(t *testing.T) {
	p := mustLoad(t)
	e := env(service(t, p, "grafana"))
	for k, want := range map[string]string{
		"GF_AUTH_ANONYMOUS_ENABLED":  "false",
		"GF_USERS_ALLOW_SIGN_UP":     "false",
		"GF_SECURITY_ADMIN_PASSWORD": secrets["GRAFANA_ADMIN_PASSWORD"],
	} {
		if e[k] != want {
			t.Errorf("grafana: %s = %q, want %q", k, e[k], want)
		}
	}
}

func TestStartOrder(t *testing.T) {
	p := mustLoad(t)
	const healthy, done = types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully
	want := map[string]map[string]string{
		"kafka":            {},
		"clickhouse":       {},
		"grafana":          {},
		"prometheus":       {},
		"gapwatch-token":   {},
		"kafka-init":       {"kafka": healthy},
		"gapwatch-migrate": {"clickhouse": healthy},
		"gapwatch":         {"gapwatch-token": done, "gapwatch-migrate": done, "kafka-init": done, "kafka": healthy, "clickhouse": healthy},
		"simulate":         {"kafka-init": done},
	}
	for name, deps := range want {
		s := service(t, p, name)
		got := map[string]string{}
		for dep, d := range s.DependsOn {
			got[dep] = d.Condition
			if !d.Required {
				t.Errorf("%s: dependency on %s is optional", name, dep)
			}
		}
		if len(got) != len(deps) {
			t.Errorf("%s depends on %v, want %v", name, got, deps)
		}
		for dep, cond := range deps {
			if got[dep] != cond {
				t.Errorf("%s: depends on %s with %q, want %q", name, dep, got[dep], cond)
			}
		}
	}
	// Conditions that can actually be met: a service waited on for health has a healthcheck, and
	// one waited on for completion is not restarted (restart would keep it from completing).
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			target := service(t, p, dep)
			switch d.Condition {
			case healthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", s.Name, dep, dep)
				}
			case done:
				if target.Restart != "" && target.Restart != types.RestartPolicyNo {
					t.Errorf("%s waits for %s to complete, but %s has restart %q", s.Name, dep, dep, target.Restart)
				}
			}
		}
	}
}

func TestRestartPolicies(t *testing.T) {
	p := mustLoad(t)
	for name, want := range map[string]string{
		"kafka":            types.RestartPolicyUnlessStopped,
		"clickhouse":       types.RestartPolicyUnlessStopped,
		"gapwatch":         types.RestartPolicyUnlessStopped,
		"grafana":          types.RestartPolicyUnlessStopped,
		"prometheus":       types.RestartPolicyUnlessStopped,
		"kafka-init":       types.RestartPolicyNo,
		"gapwatch-token":   types.RestartPolicyNo,
		"gapwatch-migrate": types.RestartPolicyNo,
		"simulate":         types.RestartPolicyOnFailure,
	} {
		if got := service(t, p, name).Restart; got != want {
			t.Errorf("%s: restart %q, want %q", name, got, want)
		}
	}
}

func TestHealthchecks(t *testing.T) {
	p := mustLoad(t)
	for _, name := range []string{"kafka", "clickhouse", "gapwatch", "prometheus"} {
		hc := service(t, p, name).HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
		}
	}
}

func TestGapwatchContainersHardened(t *testing.T) {
	p := mustLoad(t)
	for _, name := range gapwatchServices {
		s := service(t, p, name)
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: want read_only, cap_drop ALL and no-new-privileges", name)
		}
		if s.User == "0" || s.User == "root" || strings.HasPrefix(s.User, "0:") {
			t.Errorf("%s: runs as root", name)
		}
	}
}

// The image the gapwatch services are built from: the entrypoint is the binary, it runs as a
// non-root user, and its runtime base has the wget that the healthcheck calls.
func TestDockerfile(t *testing.T) {
	text := readFile(t, dockerfile)
	var from, user, entrypoint string
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			from, user = fields[1], "" // each stage starts as root
		case "USER":
			user = fields[1]
		case "ENTRYPOINT":
			entrypoint = strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
		}
	}
	if !strings.Contains(text, "golang:") || !strings.Contains(text, "./cmd/gapwatch") {
		t.Error("Dockerfile does not build ./cmd/gapwatch with the golang image")
	}
	if entrypoint != `["gapwatch"]` {
		t.Errorf("ENTRYPOINT %s, want [\"gapwatch\"]", entrypoint)
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage runs as %q, want a non-root user", user)
	}
	p := mustLoad(t)
	for _, name := range gapwatchServices {
		hc := service(t, p, name).HealthCheck
		if hc != nil && slices.Contains(hc.Test, "wget") && strings.Contains(from, "distroless") {
			t.Errorf("%s's healthcheck calls wget, but the runtime base %s has none", name, from)
		}
	}
	if !strings.Contains(from, "alpine") {
		t.Errorf("runtime base %s: the healthcheck needs busybox wget (alpine)", from)
	}
}

// bindMount returns the host source of s's bind mount at target ("" if none) and whether it is
// read-only.
func bindMount(s types.ServiceConfig, target string) (string, bool) {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source, v.ReadOnly
		}
	}
	return "", false
}

// Grafana loads the gapwatch plugin from `make plugin`'s output, allows it unsigned by its id
// only, and is provisioned with the datasources and dashboards of dashboards/grafana.
func TestGrafanaPluginAndProvisioning(t *testing.T) {
	p := mustLoad(t)
	g := service(t, p, "grafana")
	e := env(g)
	if got := e["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"]; got != "gapwatch-coverage-datasource" {
		t.Errorf("unsigned plugins allowed: %q, want exactly gapwatch-coverage-datasource", got)
	}
	root, _ := filepath.Abs("..")
	for target, src := range map[string]string{
		"/var/lib/grafana/plugins/gapwatch-coverage-datasource": "dashboards/grafana/dist",
		"/etc/grafana/provisioning/datasources":                 "dashboards/grafana/provisioning/datasources",
		"/etc/grafana/provisioning/dashboards":                  "dashboards/grafana/provisioning/dashboards",
	} {
		got, ro := bindMount(g, target)
		if got != filepath.Join(root, src) || !ro {
			t.Errorf("grafana: %s is mounted from %q (read-only %v), want %s read-only", target, got, ro, src)
		}
		if src == "dashboards/grafana/dist" {
			continue // built by make plugin
		}
		if _, err := os.Stat(filepath.Join(root, src)); err != nil {
			t.Error(err)
		}
	}

	// The provisioned datasource points at the gapwatch service's API and takes the token from
	// the environment variable compose passes to Grafana.
	ds := readFile(t, "../dashboards/grafana/provisioning/datasources/gapwatch.yaml")
	port := strings.TrimPrefix(env(service(t, p, "gapwatch"))["GAPWATCH_HTTP_ADDR"], "0.0.0.0:")
	for _, want := range []string{"type: gapwatch-coverage-datasource", "url: http://gapwatch:" + port,
		"apiToken: $GAPWATCH_GRAFANA_TOKEN", "type: prometheus", "url: http://prometheus:9090"} {
		if !strings.Contains(ds, want) {
			t.Errorf("provisioning/datasources/gapwatch.yaml lacks %q", want)
		}
	}
	if e["GAPWATCH_GRAFANA_TOKEN"] != secrets["GAPWATCH_GRAFANA_TOKEN"] {
		t.Error("grafana does not get GAPWATCH_GRAFANA_TOKEN from the environment")
	}
	dash := readFile(t, "../dashboards/grafana/provisioning/dashboards/gapwatch.yaml")
	if !strings.Contains(dash, "path: /etc/grafana/provisioning/dashboards") {
		t.Error("the dashboard provider does not read the mounted folder")
	}
}

// Prometheus scrapes the gapwatch service's /metrics on its API port.
func TestPrometheusScrapesGapwatch(t *testing.T) {
	p := mustLoad(t)
	prom := service(t, p, "prometheus")
	src, ro := bindMount(prom, "/etc/prometheus/prometheus.yml")
	root, _ := filepath.Abs("..")
	if src != filepath.Join(root, "deploy/prometheus/prometheus.yml") || !ro {
		t.Fatalf("prometheus.yml mounted from %q (read-only %v)", src, ro)
	}
	if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus command %v does not read the mounted file", prom.Command)
	}
	port := strings.TrimPrefix(env(service(t, p, "gapwatch"))["GAPWATCH_HTTP_ADDR"], "0.0.0.0:")
	cfg := readFile(t, "prometheus/prometheus.yml")
	for _, want := range []string{"metrics_path: /metrics", `targets: ["gapwatch:` + port + `"]`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("prometheus.yml lacks %q", want)
		}
	}
	if !mountsVolume(p, prom, "/prometheus") {
		t.Error("prometheus: /prometheus is not on a named volume")
	}
}

// The gapwatch-token service's script, run here with the test's token, writes a gapwatch
// configuration holding the token's SHA-256 (and not the token), which the gapwatch service
// mounts where its command reads it.
func TestAPITokenFile(t *testing.T) {
	p := mustLoad(t)
	tok := service(t, p, "gapwatch-token")
	if len(tok.Command) != 1 || !slices.Equal([]string(tok.Entrypoint), []string{"/bin/sh", "-c"}) {
		t.Fatalf("gapwatch-token: entrypoint %v command %v, want a /bin/sh -c script", tok.Entrypoint, tok.Command)
	}
	dir := t.TempDir()
	script := strings.ReplaceAll(tok.Command[0], "/config/", dir+"/")
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GAPWATCH_GRAFANA_TOKEN=" + env(tok)["GAPWATCH_GRAFANA_TOKEN"]}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the gapwatch-token script fails: %v\n%s", err, out)
	}
	written := readFile(t, filepath.Join(dir, "gapwatch.yaml"))
	sum := sha256.Sum256([]byte(secrets["GAPWATCH_GRAFANA_TOKEN"]))
	if !strings.Contains(written, "sha256: "+hex.EncodeToString(sum[:])) || strings.Contains(written, secrets["GAPWATCH_GRAFANA_TOKEN"]) {
		t.Errorf("written configuration:\n%s\nwant the token's SHA-256 and not the token", written)
	}
	var doc struct {
		HTTP struct {
			Tokens []struct {
				Name    string   `yaml:"name"`
				SHA256  string   `yaml:"sha256"`
				Tenants []string `yaml:"tenants"`
			} `yaml:"tokens"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(written), &doc); err != nil || len(doc.HTTP.Tokens) != 1 ||
		doc.HTTP.Tokens[0].Name != "grafana" || !slices.Equal(doc.HTTP.Tokens[0].Tenants, []string{"*"}) {
		t.Errorf("written configuration does not read as http.tokens [grafana, all tenants]: %v %+v", err, doc)
	}

	g := service(t, p, "gapwatch")
	// gapwatch accepts it, with the service's environment.
	if _, err := config.Load(filepath.Join(dir, "gapwatch.yaml"), func(k string) string { return env(g)[k] }); err != nil {
		if strings.Contains(err.Error(), "field tokens not found") {
			t.Log("this gapwatch has no API tokens yet (security branch): not loading the written configuration")
		} else {
			t.Errorf("gapwatch rejects the written configuration: %v", err)
		}
	}
	var mounted bool
	for _, v := range g.Volumes {
		mounted = mounted || (v.Type == types.VolumeTypeVolume && v.Source == "gapwatch-config" &&
			v.Target == filepath.Dir(gapwatchConfig) && v.ReadOnly)
	}
	if !mounted || !mountsVolume(p, tok, "/config") {
		t.Error("the gapwatch-config volume is not written by gapwatch-token at /config and mounted read-only by gapwatch")
	}
}
