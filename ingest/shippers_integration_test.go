package ingest_test

// Real log shippers writing into the real Kafka, gapwatch counting what they
// wrote: rsyslog's omkafka and syslog-ng's kafka-c destination with their
// default templates, and kcat producing every vendor fixture of
// ingest/decode/testdata/envelopes. The expected counts come from what the
// test sent, never from gapwatch's decoder. `deploy/tools.sh shippers`
// installs the shippers (`make test` runs it through `make tools`).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/ingest"
	"github.com/gapwatch/gapwatch/ingest/decode"
	"github.com/gapwatch/gapwatch/internal/servers"
	"github.com/gapwatch/gapwatch/storage"
	"github.com/gapwatch/gapwatch/storage/memstore"
)

// streamMinute is one stream's one-minute bucket (Unix seconds).
type streamMinute struct {
	tenant, source string
	minute         int64
}

// sentLine is one syslog line a test sends to a shipper, with the stream
// and event time gapwatch must count it under.
type sentLine struct {
	text      string
	host, tag string
	at        time.Time
	bsd       bool // an RFC 3164 line (else RFC 5424)
}

// syslogLines returns n lines from base on, 3 s apart, spread over hosts and
// tags, in the forms devices send to a relay: RFC 5424 in UTC, with a
// positive and a negative offset and fractions, and RFC 3164 (no year, no
// zone: the relay's zone, which the tests set to UTC).
func syslogLines(base time.Time, n int) []sentLine {
	hosts := []string{"web-1", "fw-2.acme.example", "db-3"}
	tags := []string{"sshd", "kernel", "postgres", "CRON"}
	plus2, minus5 := time.FixedZone("", 2*3600), time.FixedZone("", -5*3600)
	out := make([]sentLine, 0, n)
	for i := range n {
		// Every (host, tag) pair is a stream, and each stream gets every form.
		host, tag := hosts[i%len(hosts)], tags[(i/len(hosts))%len(tags)]
		at := base.Add(time.Duration(i) * 3 * time.Second)
		pri := 8*(i%24) + i%8 // facility, severity
		l := sentLine{host: host, tag: tag}
		switch (i / (len(hosts) * len(tags))) % 4 {
		case 0:
			at = at.Add(time.Duration(i%1000) * time.Millisecond)
			l.text = fmt.Sprintf("<%d>1 %s %s %s %d - - accepted session %d", pri, at.UTC().Format("2006-01-02T15:04:05.000Z07:00"), host, tag, 1000+i, i)
		case 1:
			l.text = fmt.Sprintf("<%d>1 %s %s %s - ID%d [origin ip=\"192.0.2.%d\"] message %d", pri, at.In(plus2).Format(time.RFC3339), host, tag, i, i%250, i)
		case 2:
			l.text, l.bsd = fmt.Sprintf("<%d>%s %s %s[%d]: legacy line %d", pri, at.UTC().Format(time.Stamp), host, tag, 2000+i, i), true
		case 3:
			at = at.Add(time.Duration(i) * time.Microsecond)
			l.text = fmt.Sprintf("<%d>1 %s %s %s - - - with offset %d", pri, at.In(minus5).Format("2006-01-02T15:04:05.000000Z07:00"), host, tag, i)
		}
		l.at = at
		out = append(out, l)
	}
	return out
}

// expectedOf counts lines per stream and minute.
func expectedOf(lines []sentLine) map[streamMinute]uint64 {
	want := map[streamMinute]uint64{}
	for _, l := range lines {
		want[streamMinute{l.host, l.tag, l.at.Truncate(time.Minute).Unix()}]++
	}
	return want
}

// child is a shipper process, in its own process group, killed with its
// group when the test ends.
type child struct {
	name   string
	log    string // its stdout and stderr
	exited chan struct{}
	err    error
}

func startChild(t *testing.T, dir, name string, env []string, bin string, args ...string) *child {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), "starting %s", bin)
	c := &child{name: name, log: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.exited)
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-c.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s output:\n%s", name, b)
		}
	})
	return c
}

// failIfExited fails t when c has ended, with its output.
func (c *child) failIfExited(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
		b, _ := os.ReadFile(c.log)
		t.Fatalf("%s exited (%v):\n%s", c.name, c.err, b)
	default:
	}
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sendLines connects to the shipper's TCP input (waiting up to 20 s for it to
// listen) and writes the lines, newline-framed.
func sendLines(t *testing.T, c *child, port int, lines []sentLine) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	var conn net.Conn
	for {
		var err error
		if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
		c.failIfExited(t)
		require.True(t, time.Now().Before(deadline), "%s does not listen on %s: %v", c.name, addr, err)
		time.Sleep(50 * time.Millisecond)
	}
	defer conn.Close()
	require.NoError(t, conn.SetWriteDeadline(time.Now().Add(20*time.Second)))
	w := bufio.NewWriter(conn)
	for _, l := range lines {
		_, err := w.WriteString(l.text + "\n")
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
}

// waitRecords waits (up to timeout) until topic holds n records, checks that
// no more follow within a second, and returns its end offsets.
func waitRecords(t *testing.T, c *child, brokers []string, topic string, partitions, n int, timeout time.Duration) map[int]int64 {
	t.Helper()
	total := func() (map[int]int64, int) {
		end := servers.EndOffsets(t, brokers, topic, partitions)
		sum := 0
		for _, o := range end {
			sum += int(o)
		}
		return end, sum
	}
	deadline := time.Now().Add(timeout)
	for {
		_, got := total()
		if got >= n {
			break
		}
		if c != nil {
			c.failIfExited(t)
		}
		require.True(t, time.Now().Before(deadline), "%d of %d records in %s after %s", got, n, topic, timeout)
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	end, got := total()
	require.Equal(t, n, got, "records in %s: exactly one per line sent", topic)
	return end
}

// readAll returns the values of every record of topic up to end.
func readAll(t *testing.T, brokers []string, topic string, end map[int]int64) []string {
	t.Helper()
	var out []string
	for p, o := range end {
		if o == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for range o {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err, "reading %s/%d", topic, p)
			out = append(out, string(m.Value))
		}
		cancel()
		r.Close()
	}
	return out
}

// shippedForm is how rsyslog's and syslog-ng's default Kafka templates
// write a line: no PRI, an RFC 3339 time, HOSTNAME, TAG.
var shippedForm = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) \S+ \S+`)

// checkShipped checks that every record is in shippedForm and logs one
// record of each form of syslogLines, as the shipper wrote it.
func checkShipped(t *testing.T, shipper string, records []string) {
	t.Helper()
	for _, r := range records {
		require.Regexp(t, shippedForm, r, "%s's default template: no PRI, RFC 3339 time first", shipper)
	}
	for _, mark := range []string{" accepted session ", " message ", " legacy line ", " with offset "} {
		for _, r := range records {
			if strings.Contains(r, mark) {
				t.Logf("%s wrote %q", shipper, r)
				break
			}
		}
	}
}

// countSink is a store ingest writes to and the test reads counts back from.
type countSink interface {
	ingest.Sink
	BucketCounts(ctx context.Context, clock storage.Clock, from, to time.Time) ([]storage.StreamCount, error)
}

// ingestCounts runs gapwatch's ingest on topic until it has stored
// everything up to end, and returns the stored event-clock counts per stream
// and minute, the arrival-clock totals per stream and the metrics.
func ingestCounts(t *testing.T, brokers []string, topic string, end map[int]int64, sink countSink, mod func(*ingest.Config)) (map[streamMinute]uint64, map[[2]string]uint64, prometheus.Gatherer) {
	t.Helper()
	cfg := ingest.Config{Brokers: brokers, Topics: []string{topic}, Group: servers.Unique("it_shippers"),
		FlushInterval: 100 * time.Millisecond, FetchMaxWait: 100 * time.Millisecond, IdleAfter: 500 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	ingestUntil(t, cfg, sink, reg, end)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from, to := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	events := map[streamMinute]uint64{}
	sc, err := sink.BucketCounts(ctx, storage.Event, from, to)
	require.NoError(t, err)
	for _, c := range sc {
		if c.Events > 0 {
			events[streamMinute{c.Tenant, c.Source, c.Bucket}] += c.Events
		}
	}
	arrival := map[[2]string]uint64{}
	sc, err = sink.BucketCounts(ctx, storage.Arrival, from, to)
	require.NoError(t, err)
	for _, c := range sc {
		arrival[[2]string{c.Tenant, c.Source}] += c.Events
	}
	return events, arrival, reg
}

// checkCounts compares what ingest stored with what was sent: every stream's
// count in every minute (event clock), exactly, and per stream on the
// arrival clock; nothing rejected.
func checkCounts(t *testing.T, want, got map[streamMinute]uint64, arrival map[[2]string]uint64, reg prometheus.Gatherer, n int) {
	t.Helper()
	require.Equal(t, want, got, "events per (host, tag, minute): sent vs stored")
	wantArrival := map[[2]string]uint64{}
	for k, v := range want {
		wantArrival[[2]string{k.tenant, k.source}] += v
	}
	require.Equal(t, wantArrival, arrival, "events per stream on the arrival clock")
	require.Equal(t, float64(n), metric(t, reg, "gapwatch_ingest_events_stored_total", ""))
	if fams, err := reg.Gather(); err == nil {
		for _, f := range fams {
			if f.GetName() == "gapwatch_ingest_rejected_total" {
				for _, m := range f.GetMetric() {
					require.Zero(t, m.GetCounter().GetValue(), "rejected %v", m.GetLabel())
				}
			}
		}
	}
	minutes := map[int64]bool{}
	for k := range want {
		minutes[k.minute] = true
	}
	t.Logf("%d events sent, %d stored; %d streams, %d (stream, minute) cells over %d minutes, all exact", n, n, len(wantArrival), len(want), len(minutes))
}

// lookBinary finds a shipper: the env override, PATH, /usr/sbin, then the
// copy deploy/tools.sh unpacks into the state directory
// ($GAPWATCH_STATE_DIR or the repository's .state)/<unpacked>/usr/sbin when
// the package cannot be installed beside another log daemon. root is that
// copy's root ("" for an installed binary). Under GAPWATCH_INTEGRATION a
// missing shipper fails the test.
func lookBinary(t *testing.T, env, name, unpacked string) (bin, root string) {
	t.Helper()
	bin = os.Getenv(env)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath(name); err != nil {
			bin = ""
		}
	}
	if bin == "" {
		more := []string{"/usr/sbin/" + name}
		for _, st := range []string{os.Getenv("GAPWATCH_STATE_DIR"), filepath.Join("..", ".state")} {
			if st != "" && unpacked != "" {
				more = append(more, filepath.Join(st, unpacked, "usr", "sbin", name))
			}
		}
		for _, p := range more {
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		t.Fatalf("%s not found (set %s, or run `deploy/tools.sh shippers`, which `make test` runs through `make tools`)", name, env)
	}
	bin, err := filepath.Abs(bin)
	require.NoError(t, err)
	if r, ok := strings.CutSuffix(bin, "/usr/sbin/"+name); ok && r != "" {
		root = r
	}
	return bin, root
}

// checkConfig runs the shipper's own configuration check (modules loaded),
// so that a missing Kafka module fails here, plainly, not as a timeout.
func checkConfig(t *testing.T, env []string, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", bin, strings.Join(args, " "), out)
}

// rsyslogd returns the rsyslogd binary and, for an unpacked copy, the
// arguments that point it at its modules.
func rsyslogd(t *testing.T) (bin string, args []string) {
	t.Helper()
	bin, root := lookBinary(t, "GAPWATCH_RSYSLOGD", "rsyslogd", "rsyslog")
	if root == "" {
		return bin, nil
	}
	mods, _ := filepath.Glob(filepath.Join(root, "usr", "lib", "*", "rsyslog"))
	require.NotEmpty(t, mods, "no module directory under %s/usr/lib", root)
	return bin, []string{"-M", mods[0]}
}

// rsyslog's omkafka with its default template (RSYSLOG_FileFormat: "<RFC 3339
// time> HOSTNAME TAG: MSG", no PRI), fed by an imtcp input.
func TestRsyslogOmkafkaCountsExactly(t *testing.T) {
	brokers := servers.Kafka(t)
	bin, args := rsyslogd(t)
	ch, _ := servers.ClickHouse(t)
	topic := servers.Unique("it_rsyslog")
	servers.CreateTopic(t, brokers, topic, 3)

	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
module(load="omkafka")
# The input's own ruleset: rsyslogd's internal messages stay out of Kafka.
ruleset(name="tokafka") {
  action(type="omkafka" broker=["%s"] topic=%q)
}
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="tokafka")
`, dir, strings.Join(brokers, `","`), topic, port)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o644))
	checkConfig(t, nil, bin, append(args, "-N1", "-f", filepath.Join(dir, "rsyslog.conf"))...)
	args = append(args, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslogd.pid"))
	c := startChild(t, dir, "rsyslogd", []string{"TZ=UTC"}, bin, args...)

	base := time.Now().UTC().Truncate(time.Minute).Add(-20 * time.Minute)
	lines := syslogLines(base, 360)
	sendLines(t, c, port, lines)
	end := waitRecords(t, c, brokers, topic, 3, len(lines), 30*time.Second)
	checkShipped(t, "omkafka", readAll(t, brokers, topic, end))

	got, arrival, reg := ingestCounts(t, brokers, topic, end, ch, nil)
	checkCounts(t, expectedOf(lines), got, arrival, reg, len(lines))
}

// syslogNG returns the syslog-ng binary and the arguments and environment an
// unpacked copy (deploy/tools.sh shippers: $GAPWATCH_STATE_DIR/syslog-ng)
// needs to find its libraries and modules.
func syslogNG(t *testing.T) (bin string, args, env []string) {
	t.Helper()
	bin, root := lookBinary(t, "GAPWATCH_SYSLOG_NG", "syslog-ng", "syslog-ng")
	if root == "" {
		return bin, nil, nil
	}
	lib := filepath.Join(root, "usr", "lib", "syslog-ng")
	mods, _ := filepath.Glob(filepath.Join(lib, "[0-9]*"))
	require.NotEmpty(t, mods, "no module directory under %s", lib)
	return bin, []string{"--module-path", mods[0]}, []string{"LD_LIBRARY_PATH=" + lib}
}

// syslog-ng's kafka-c destination with its default template, message()
// "${ISODATE} ${HOST} ${MSGHDR}${MSG}\n", fed by network() sources that keep
// the senders' host names (keep-hostname(yes), as a relay is set up).
func TestSyslogNGKafkaCountsExactly(t *testing.T) {
	brokers := servers.Kafka(t)
	bin, args, env := syslogNG(t)
	ch, _ := servers.ClickHouse(t)
	topic := servers.Unique("it_syslogng")
	servers.CreateTopic(t, brokers, topic, 3)

	dir := t.TempDir()
	port3164, port5424 := freePort(t), freePort(t)
	conf := fmt.Sprintf(`@version: 3.38
options { keep-hostname(yes); use-dns(no); use-fqdn(no); chain-hostnames(no); stats-freq(0); };
source s_bsd { network(ip("127.0.0.1") port(%d) transport("tcp")); };
source s_ietf { network(ip("127.0.0.1") port(%d) transport("tcp") flags(syslog-protocol)); };
destination d_kafka { kafka-c(bootstrap-servers(%q) topic(%q)); };
log { source(s_bsd); source(s_ietf); destination(d_kafka); };
`, port3164, port5424, strings.Join(brokers, ","), topic)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "syslog-ng.conf"), []byte(conf), 0o644))
	checkConfig(t, env, bin, append(args, "--syntax-only", "-f", filepath.Join(dir, "syslog-ng.conf"))...)
	args = append(args, "-F", "-f", filepath.Join(dir, "syslog-ng.conf"), "--no-caps",
		"-R", filepath.Join(dir, "syslog-ng.persist"), "-p", filepath.Join(dir, "syslog-ng.pid"), "-c", filepath.Join(dir, "syslog-ng.ctl"))
	c := startChild(t, dir, "syslog-ng", append(env, "TZ=UTC"), bin, args...)

	base := time.Now().UTC().Truncate(time.Minute).Add(-20 * time.Minute)
	lines := syslogLines(base, 360)
	var bsd, ietf []sentLine
	for _, l := range lines {
		if l.bsd {
			bsd = append(bsd, l)
		} else {
			ietf = append(ietf, l)
		}
	}
	sendLines(t, c, port3164, bsd)
	sendLines(t, c, port5424, ietf)
	end := waitRecords(t, c, brokers, topic, 3, len(lines), 30*time.Second)
	checkShipped(t, "kafka-c", readAll(t, brokers, topic, end))

	got, arrival, reg := ingestCounts(t, brokers, topic, end, ch, nil)
	checkCounts(t, expectedOf(lines), got, arrival, reg, len(lines))
}

// Every vendor fixture produced by kcat (librdkafka) as one message, the
// file as it is (trailing newline included), counted per stream exactly.
func TestKcatProducesEveryFixture(t *testing.T) {
	brokers := servers.Kafka(t)
	kcat, _ := lookBinary(t, "GAPWATCH_KCAT", "kcat", "")
	nov30 := time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC).Unix()
	type stream struct{ tenant, source string }
	cases := []struct {
		file string
		want map[stream]uint64 // all in the minute 2026-11-30T08:15Z
	}{
		{"cef-bare.txt", map[stream]uint64{{"sensor-7.acme", "threatmanager"}: 1}},
		{"cef-syslog.txt", map[stream]uint64{{"fw-1.acme", "FortiGate"}: 1}},
		{"ecs-cloud-account.json", map[stream]uint64{{"123456789012", "aws.cloudtrail"}: 1}},
		{"ecs-elastic-agent.json", map[stream]uint64{{"acme", "system.auth"}: 1}},
		{"gcp-cloudaudit.json", map[stream]uint64{{"acme-prod", "cloudaudit.googleapis.com/activity"}: 1}},
		{"hec-event.json", map[stream]uint64{{"acme", "pan:traffic"}: 1}},
		{"ocsf-security-lake.json", map[stream]uint64{{"123456789012", "CloudTrail"}: 1}},
		{"otlp-logs.json", map[stream]uint64{{"acme", "auth-gateway"}: 2, {"123456789012", "billing"}: 1}},
		{"syslog-rfc3164.txt", map[stream]uint64{{"mymachine", "su"}: 1}},
		{"syslog-rfc5424-sd.txt", map[stream]uint64{{"192.0.2.1", "myproc"}: 1}},
		{"syslog-rfc5424.txt", map[stream]uint64{{"mymachine.example.com", "su"}: 1}},
		{"syslog-rsyslog-omkafka.txt", map[stream]uint64{{"web-1", "sshd"}: 1}},
		{"syslog-syslog-ng-kafka.txt", map[stream]uint64{{"fw-2", "kernel"}: 1}},
	}
	dir := filepath.Join("decode", "testdata", "envelopes")
	files, err := filepath.Glob(filepath.Join(dir, "*.*"))
	require.NoError(t, err)
	covered := map[string]bool{"README.md": true}
	for _, c := range cases {
		covered[c.file] = true
	}
	for _, f := range files {
		require.True(t, covered[filepath.Base(f)], "fixture %s has no case here", f)
	}

	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			topic := servers.Unique("it_kcat")
			servers.CreateTopic(t, brokers, topic, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// One file is one message (kcat's file mode), sent to partition 0.
			out, err := exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(brokers, ","), "-t", topic, "-p", "0",
				"-X", "acks=all", filepath.Join(dir, c.file)).CombinedOutput()
			require.NoError(t, err, "kcat: %s", out)
			end := waitRecords(t, nil, brokers, topic, 1, 1, 20*time.Second)

			// The fixtures are of 2026-11-30: accept them however old they get.
			got, arrival, reg := ingestCounts(t, brokers, topic, end, memstore.New(100*365*24*time.Hour), func(cfg *ingest.Config) {
				cfg.MaxLateness = 100 * 365 * 24 * time.Hour
				cfg.Fields = decode.FieldConfig{} // format auto
			})
			want := map[streamMinute]uint64{}
			n := 0
			for s, k := range c.want {
				want[streamMinute{s.tenant, s.source, nov30}] = k
				n += int(k)
			}
			if c.file == "syslog-rfc3164.txt" { // no year: the one nearest the record's arrival
				want = map[streamMinute]uint64{{"mymachine", "su", nearestYear(time.Date(0, 11, 30, 8, 15, 0, 0, time.UTC), time.Now()).Unix()}: 1}
			}
			checkCounts(t, want, got, arrival, reg, n)
		})
	}
}

// nearestYear places month/day/time of t in the year (around now's) nearest now.
func nearestYear(t, now time.Time) time.Time {
	best := time.Time{}
	for y := now.Year() - 1; y <= now.Year()+1; y++ {
		c := time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
		if best.IsZero() || c.Sub(now).Abs() < best.Sub(now).Abs() {
			best = c
		}
	}
	return best
}
