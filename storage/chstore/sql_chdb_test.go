package chstore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gapwatch/gapwatch/storage"
)

// literal renders a bound argument as clickhouse-go does for these types.
func literal(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(x) + "'"
	case time.Time:
		return fmt.Sprintf("toDateTime(%d)", x.Unix())
	default:
		return fmt.Sprint(x)
	}
}

// bindLiterals substitutes each ? of sql with the next argument.
func bindLiterals(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var b strings.Builder
	i := 0
	for _, r := range sql {
		if r == '?' {
			require.Less(t, i, len(args), "too few args for %s", sql)
			b.WriteString(literal(args[i]))
			i++
			continue
		}
		b.WriteRune(r)
	}
	require.Equal(t, len(args), i, "too many args for %s", sql)
	return b.String()
}

type statement struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
}

// queryConstants lists the q* constants of queries.go, so that a new statement
// cannot be added without this test running it.
func queryConstants(t *testing.T) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "queries.go", nil, 0)
	require.NoError(t, err)
	var names []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}

// TestStatementsOnCurrentClickHouse runs the schema (legacy and modern forms) and
// every query of queries.go on current ClickHouse through chDB, and checks the
// answers of the reads. CI's server is 18.16; this covers what users run.
func TestStatementsOnCurrentClickHouse(t *testing.T) {
	// make test sets GAPWATCH_PYTHON to the interpreter of the virtualenv that
	// deploy/tools.sh chdb makes.
	python := os.Getenv("GAPWATCH_PYTHON")
	var err error
	if python == "" {
		python, err = exec.LookPath("python3")
	}
	if err == nil {
		err = exec.Command(python, "-c", "import chdb").Run()
	}
	if err != nil {
		if os.Getenv("GAPWATCH_INTEGRATION") != "" {
			t.Fatalf("chdb is required for the SQL check (deploy/tools.sh chdb, then GAPWATCH_PYTHON=<its output>): %v", err)
		}
		t.Skip("chdb not installed")
	}

	var stmts []statement
	add := func(name, sql string) { stmts = append(stmts, statement{name, sql}) }
	for _, modern := range []bool{false, true} {
		db := map[bool]string{false: "gw_legacy", true: "gw_modern"}[modern]
		s := &Store{db: "`" + db + "`"}
		q := func(sql string) string { return s.q(sql) }
		add(db+"/create database", "CREATE DATABASE IF NOT EXISTS "+s.db)
		add(db+"/qCreateMigrations", q(qCreateMigrations))
		migs, err := Migrations(db, Features{Modern: modern})
		require.NoError(t, err)
		for _, m := range migs {
			for i, st := range m.Statements {
				add(fmt.Sprintf("%s/%s/%d", db, m.Name, i+1), st)
				add(fmt.Sprintf("%s/%s/%d again", db, m.Name, i+1), st) // idempotent
			}
		}
		add(db+"/qInsertMigration", q(qInsertMigration)+" VALUES (1, '0001_counts')")
		add(db+"/qSchemaVersion", q(qSchemaVersion))
		day := "toDate('2026-11-20')"
		add(db+"/qInsertCounts", q(qInsertCounts)+` VALUES `+
			`(`+day+`, 'acme', 'firewall', 0, toDateTime(1763632800), 5, [1,2,0,0,0,0,0,0,0,2], '', 0, 0, toDateTime(0)),`+
			`(`+day+`, 'acme', 'firewall', 0, toDateTime(1763632860), 3, [], '', 0, 0, toDateTime(1763632910)),`+
			`(`+day+`, 'acme', 'firewall', 0, toDateTime(1763632860), 4, [], '', 0, 0, toDateTime(1763632900)),`+
			`(`+day+`, 'acme', 'firewall', 1, toDateTime(1763632800), 12, [], '', 0, 0, toDateTime(0)),`+
			`(`+day+`, 'x\' OR \'1\'=\'1', 'firewall', 0, toDateTime(1763632800), 1, [], '', 0, 0, toDateTime(0)),`+
			`(`+day+`, '', '', 0, toDateTime(0), 0, [], 'logs', 3, 4242, toDateTime(1763632870))`)
		add(db+"/qOffsets", q(qOffsets))
		// Late event-clock rows: one arrived early, two later (one of them of a
		// hostile tenant), one outside the span.
		add(db+"/qInsertCounts late", q(qInsertCounts)+` VALUES `+
			`(`+day+`, 'acme', 'firewall', 1, toDateTime(1763632860), 3, [], '', 0, 0, toDateTime(1763632900)),`+
			`(`+day+`, 'acme', 'firewall', 1, toDateTime(1763632860), 4, [], '', 0, 0, toDateTime(1763636000)),`+
			`(`+day+`, 'acme', 'firewall', 1, toDateTime(1763632920), 5, [], '', 0, 0, toDateTime(1763636000)),`+
			`(`+day+`, 'acme', 'firewall', 1, toDateTime(1763636400), 6, [], '', 0, 0, toDateTime(1763636000)),`+
			`(`+day+`, 'x\' OR \'1\'=\'1', 'firewall', 1, toDateTime(1763632860), 7, [], '', 0, 0, toDateTime(1763636000)),`+
			`(`+day+`, 'acme', 'fw', 1, toDateTime(1763632860), 4, [], '', 0, 0, toDateTime(1763636000)),`+
			`(`+day+`, 'acme', 'fw', 0, toDateTime(1763633400), 8, [], '', 0, 0, toDateTime(0)),`+
			`(`+day+`, 'acme', 'fw', 1, toDateTime(1763632920), 9, [], '', 0, 0, toDateTime(1763636000))`)
		arrived, args := s.arrivedSQL(storage.ArrivedQuery{ArrivedFrom: 1763633000, ArrivedTo: 1763637000, Spans: []storage.StreamSpan{
			{Tenant: "acme", Source: "firewall", From: 1763632800, To: 1763633400},
			{Tenant: `x' OR '1'='1`, Source: "firewall", From: 1763632800, To: 1763633400}}})
		add(db+"/qArrived", bindLiterals(t, arrived, args...)+" ORDER BY tenant, source, bucket")
		from := int64(1763632800)
		add(db+"/qRatesRaw", bindLiterals(t, q(qRatesRaw), from, int64(60), "acme", "firewall", uint8(0), from, from+600)+" ORDER BY i")
		// The rollup of write day 2026-11-20 (in two slices), its check and
		// marker; a day the old view rolled up, in counts_hourly.
		add(db+"/qRollupDue", bindLiterals(t, q(qRollupDue), "2026-11-21"))
		add(db+"/qRollupRaw", bindLiterals(t, q(qRollupRaw), "2026-11-20"))
		for k := range 2 {
			add(fmt.Sprintf("%s/qRollupInsert %d", db, k), bindLiterals(t, q(qRollupInsert), uint64(7), "2026-11-20", uint64(2), uint64(k)))
		}
		add(db+"/qRollupCheck", bindLiterals(t, q(qRollupCheck), "2026-11-20", uint64(7)))
		add(db+"/qInsertRollupMarker", q(qInsertRollupMarker)+" VALUES (toDate('2026-11-20'), 7, 71, toDateTime(1763640000))")
		add(db+"/qRollupMarkers", q(qRollupMarkers))
		add(db+"/qRollupDue after", bindLiterals(t, q(qRollupDue), "2026-11-21"))
		add(db+"/legacy hourly row", q("INSERT INTO {db}.counts_hourly (day, tenant, source, clock, hour, events) VALUES (toDate('2026-11-19'), 'acme', 'firewall', 0, toDateTime(1763632800), 30)"))
		hour := from - from%3600
		rates := func(sql, list string, args ...any) string {
			all := append([]any{hour, int64(3600), "acme", "firewall", uint8(0), hour, hour + 7200}, args...)
			return bindLiterals(t, strings.NewReplacer("{pairs}", list, "{days}", list).Replace(q(sql)), all...)
		}
		add(db+"/qRatesRolled", rates(qRatesRolled, "(toDate(?), toUInt64(?))", "2026-11-20", uint64(7)))
		add(db+"/qRatesRolled other token", rates(qRatesRolled, "(toDate(?), toUInt64(?)), (toDate(?), toUInt64(?))", "2026-11-20", uint64(9), "2026-11-19", uint64(7)))
		add(db+"/qRatesUnrolled", rates(qRatesUnrolled, "toDate(?)", "2026-11-20"))
		add(db+"/qRatesUnrolled other day", rates(qRatesUnrolled, "toDate(?), toDate(?)", "2026-11-19", "2026-11-18"))
		add(db+"/qRatesHourly", rates(qRatesHourly, "toDate(?)", "2026-11-19"))
		add(db+"/qRatesHourly other day", rates(qRatesHourly, "toDate(?)", "2026-11-20"))
		add(db+"/qBucketCounts", bindLiterals(t, q(qBucketCounts), uint8(0), from, from+120)+" ORDER BY tenant, b")
		add(db+"/qStreamBucketCounts", bindLiterals(t, q(qStreamBucketCounts), "acme", "firewall", uint8(0), from, from+120))
		add(db+"/qStreamBucketCounts hostile", bindLiterals(t, q(qStreamBucketCounts), `x' OR '1'='1`, "firewall", uint8(0), from, from+120))
		add(db+"/qStreamNames", bindLiterals(t, q(qStreamNames), "", "", uint64(100)))
		add(db+"/qStreamNames hostile", bindLiterals(t, q(qStreamNames), `x' OR '1'='1`, `x' OR '1'='1`, uint64(100)))
		add(db+"/qStreamNames limit", bindLiterals(t, q(qStreamNames), "", "", uint64(2)))
		zero := "toDateTime(0)"
		gap := func(typ, gapID, tenant string, seq, gapSeq int, ended string, expected int) string {
			return fmt.Sprintf("(%s, 0, 1, %d, %d, '%s', 'id-%s-%d', toDateTime(1763633400), 'k', '{}', '%s', '%s', 'fw', 'silence', toDateTime(1763632800), toDateTime(1763632920), %s, %d, 0, %d, %d, 0, 0, %s, [])",
				day, seq, gapSeq, typ, gapID, gapSeq, gapID, tenant, ended, expected, expected, gapSeq, zero)
		}
		add(db+"/qInsertAlerts", q(qInsertAlerts)+" VALUES "+
			gap("io.gapwatch.gap.opened", "g1", "acme", 1, 0, zero, 10)+", "+
			gap("io.gapwatch.gap.opened", "g2", `x\' OR \'1\'=\'1`, 1, 0, zero, 20)+", "+
			fmt.Sprintf("(%s, 0, 1, 1, 2, '', '', %s, '', '', '', '', '', '', %s, %s, %s, 0, 0, 0, 0, 0, 0, toDateTime(1763633400), [3,0,1])", day, zero, zero, zero, zero)+", "+
			gap("io.gapwatch.gap.resolved", "g2", `x\' OR \'1\'=\'1`, 2, 1, "toDateTime(1763634000)", 30)+", "+
			fmt.Sprintf("(%s, 0, 1, 2, 1, '', '', %s, '', '', '', '', '', '', %s, %s, %s, 0, 0, 0, 0, 0, 0, toDateTime(1763634600), [4,0,1])", day, zero, zero, zero, zero))
		add(db+"/qDetectProgress", bindLiterals(t, q(qDetectProgress), uint16(0), uint16(1)))
		add(db+"/qBatchAlerts", bindLiterals(t, q(qBatchAlerts), uint16(0), uint16(1), uint64(1)))
		add(db+"/qGaps all", bindLiterals(t, q(qGaps), "", "", "", "", "all", "all", int64(1<<32-1), int64(0), int64(0), int64(0), "", uint64(100)))
		add(db+"/qGaps open", bindLiterals(t, q(qGaps), "", "", "", "", "open", "open", int64(1<<32-1), int64(0), int64(0), int64(0), "", uint64(100)))
		add(db+"/qGaps tenant", bindLiterals(t, q(qGaps), `x' OR '1'='1`, `x' OR '1'='1`, "", "", "resolved", "resolved", int64(1763640000), int64(1763633000), int64(0), int64(0), "", uint64(100)))
		add(db+"/qGaps after", bindLiterals(t, q(qGaps), "", "", "", "", "all", "all", int64(1<<32-1), int64(0), int64(1763632800), int64(1763632800), "g1", uint64(100)))
		add(db+"/qInsertSilence", q(qInsertSilence)+` VALUES ('s1', 'x\' OR \'1\'=\'1', '', toDateTime(1763632800), toDateTime(1763636400), 'patch', toDateTime(1763632000), 1, 0), `+
			`('s2', 'acme', 'fw', toDateTime(1763632800), toDateTime(1763636400), '', toDateTime(1763632100), 1, 0), `+
			`('s2', 'acme', 'fw', toDateTime(1763632800), toDateTime(1763636400), '', toDateTime(1763632100), 2, 1), `+
			`('s1', 'x\' OR \'1\'=\'1', '', toDateTime(1763632800), toDateTime(1763640000), 'patch', toDateTime(1763632000), 3, 0)`)
		add(db+"/qSilences", bindLiterals(t, q(qSilences), uint64(10)))
		// Expectations: a replica's duplicate row, sources that sort otherwise
		// than written, a hostile tenant; day is the bucket's day.
		xday := "toDate('2025-11-20')"
		exp := func(tenant, source string, bucket int64, e, l, u float64, o int, state string) string {
			return fmt.Sprintf("(%s, %s, %s, toDateTime(%d), %g, %g, %g, %d, %s)", xday, literal(tenant), literal(source), bucket, e, l, u, o, literal(state))
		}
		add(db+"/qInsertExpectations", q(qInsertExpectations)+" VALUES "+strings.Join([]string{
			exp("acme", "fw", from, 10.5, 5.25, 21, 9, "ok"),
			exp("acme", "fw", from, 10.5, 5.25, 21, 9, "ok"),
			exp("acme", "fw", from+60, 4, 2, 8, 0, "gap"),
			exp("acme", "fw", from+300, 2, 1, 3, 2, "ok"),
			exp("acme", "dns", from+60, 1, 0.5, 2, 1, "ok"),
			exp("acme", "Zeta", from+120, 3, 1.5, 4.5, 3, "late"),
			exp(`x' OR '1'='1`, "fw", from, 99, 1, 200, 5, "ok"),
			exp("acme", "fw", from+600, 1000, 1000, 1000, 1000, "ok"), // the first bucket past the range
		}, ", "))
		add(db+"/qBands", bindLiterals(t, q(qBands), from, int64(120), "acme", "fw", from, from+600))
		add(db+"/qBands hostile", bindLiterals(t, q(qBands), from, int64(120), `x' OR '1'='1`, "fw", from, from+600))
		all := func(sql string) string { return strings.ReplaceAll(q(sql), "{only}", "") }
		some := func(sql string, n int) string {
			return strings.ReplaceAll(q(sql), "{only}", " AND source IN ("+placeholders(n, "?")+")")
		}
		add(db+"/qCoverage", bindLiterals(t, all(qCoverage), from, int64(60), "acme", from, from+600, uint64(200_001)))
		add(db+"/qCoverage only", bindLiterals(t, some(qCoverage, 2), from, int64(60), "acme", from, from+600, "dns", "Zeta", uint64(200_001)))
		add(db+"/qCoverageReceived only", bindLiterals(t, some(qCoverageReceived, 1), from, int64(60), "acme", from, from+600, "fw", "acme", from, from+600, "fw"))
		add(db+"/qCoverageFast", bindLiterals(t, q(qCoverageFast), from, int64(60), "acme", from, from+600, uint64(200_001)))
		add(db+"/qCoverageFast hostile", bindLiterals(t, q(qCoverageFast), from, int64(60), `x' OR '1'='1`, from, from+600, uint64(200_001)))
		add(db+"/qCoverageCounts", bindLiterals(t, q(qCoverageCounts), from, int64(60), "acme", from, from+600)+" ORDER BY source, i")
		add(db+"/qCoverage limit", bindLiterals(t, all(qCoverage), from, int64(60), "acme", from, from+600, uint64(2)))
		add(db+"/qCoverageReceived", bindLiterals(t, all(qCoverageReceived), from, int64(60), "acme", from, from+600, "acme", from, from+600)+" ORDER BY source, i")
		add(db+"/qCoverageReceived hostile", bindLiterals(t, all(qCoverageReceived), from, int64(60), `x' OR '1'='1`, from, from+600, `x' OR '1'='1`, from, from+600))
		add(db+"/qCoverage hostile", bindLiterals(t, all(qCoverage), from, int64(60), `x' OR '1'='1`, from, from+600, uint64(200_001)))
		add(db+"/qPartitions", bindLiterals(t, qPartitions, db)+" ORDER BY table")
		add(db+"/qDropPartition", bindLiterals(t, strings.ReplaceAll(q(qDropPartition), "{table}", "counts"), "20261120"))
		add(db+"/qOffsets after drop", q(qOffsets))
	}
	covered := map[string]bool{}
	for _, st := range stmts {
		for _, name := range queryConstants(t) {
			if strings.Contains(st.Name, "/"+name) {
				covered[name] = true
			}
		}
	}
	for _, name := range queryConstants(t) {
		require.True(t, covered[name], "statement %s of queries.go is not run on chDB by this test", name)
	}

	input, err := json.Marshal(stmts)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "statements.json")
	require.NoError(t, os.WriteFile(file, input, 0o600))
	out, err := exec.Command(python, "testdata/chdb_run.py", file).Output()
	require.NoError(t, err, "running chDB: %s", out)

	results := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Name, Result, Error string
			OK                  bool
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		require.True(t, r.OK, "%s failed on current ClickHouse: %s", r.Name, r.Error)
		results[r.Name] = r.Result
	}
	require.Len(t, results, len(stmts)+1)
	t.Logf("ran %d statements on ClickHouse %s (chDB)", len(stmts), strings.TrimSpace(results["version"]))
	for _, db := range []string{"gw_legacy", "gw_modern"} {
		require.Equal(t, "1\n", results[db+"/qSchemaVersion"])
		require.Equal(t, "logs\t3\t4242\t2025-11-20 10:01:10\n", results[db+"/qOffsets"])
		require.Equal(t, "0\t5\n1\t7\n", results[db+"/qRatesRaw"])
		require.Equal(t, "2026-11-20\n", results[db+"/qRollupDue"])
		require.Equal(t, "13\t71\n", results[db+"/qRollupRaw"])
		require.Equal(t, "71\n", results[db+"/qRollupCheck"])
		require.Equal(t, "2026-11-20\t7\n", results[db+"/qRollupMarkers"])
		require.Equal(t, "", results[db+"/qRollupDue after"])
		require.Equal(t, "0\t12\n", results[db+"/qRatesRolled"])
		require.Equal(t, "", results[db+"/qRatesRolled other token"])
		require.Equal(t, "", results[db+"/qRatesUnrolled"])
		require.Equal(t, "0\t12\n", results[db+"/qRatesUnrolled other day"])
		require.Equal(t, "0\t30\n", results[db+"/qRatesHourly"])
		require.Equal(t, "", results[db+"/qRatesHourly other day"])
		require.Equal(t, "acme\tfirewall\t1763632860\t1763636000\t4\nacme\tfirewall\t1763632920\t1763636000\t5\n"+
			"x\\' OR \\'1\\'=\\'1\tfirewall\t1763632860\t1763636000\t7\n", results[db+"/qArrived"])
		require.Equal(t, "acme\tfirewall\t1763632800\t5\t[1,2,0,0,0,0,0,0,0,2]\t0\nacme\tfirewall\t1763632860\t7\t[]\t1763632900\nx\\' OR \\'1\\'=\\'1\tfirewall\t1763632800\t1\t[]\t0\n", results[db+"/qBucketCounts"]) // TabSeparated escapes quotes
		require.Equal(t, "1763632800\t5\t[1,2,0,0,0,0,0,0,0,2]\t0\n1763632860\t7\t[]\t1763632900\n", results[db+"/qStreamBucketCounts"])
		require.Equal(t, "1763632800\t1\t[]\t0\n", results[db+"/qStreamBucketCounts hostile"])
		require.Equal(t, "acme\tfirewall\nacme\tfw\nx\\' OR \\'1\\'=\\'1\tfirewall\n", results[db+"/qStreamNames"])
		require.Equal(t, "x\\' OR \\'1\\'=\\'1\tfirewall\n", results[db+"/qStreamNames hostile"])
		require.Equal(t, "acme\tfirewall\nacme\tfw\n", results[db+"/qStreamNames limit"])
		require.Equal(t, "counts\t20261120\ncounts_hourly\t20261119\ncounts_rollup\t20261120\nexpectations\t20251120\n", results[db+"/qPartitions"])
		// Per 2-minute step, the duplicate counted once.
		require.Equal(t, "0\t14.5\t7.25\t29\t9\t2\n2\t2\t1\t3\t2\t1\n", results[db+"/qBands"])
		require.Equal(t, "0\t99\t1\t200\t5\t1\n", results[db+"/qBands hostile"])
		require.Equal(t, "Zeta\t2\t3\t1.5\t4.5\t3\t1\n"+
			"dns\t1\t1\t0.5\t2\t1\t1\n"+
			"fw\t0\t10.5\t5.25\t21\t9\t1\n"+
			"fw\t1\t4\t2\t8\t0\t1\n"+
			"fw\t5\t2\t1\t3\t2\t1\n", results[db+"/qCoverage"])
		require.Equal(t, "Zeta\t2\t3\t1.5\t4.5\t3\t1\ndns\t1\t1\t0.5\t2\t1\t1\n", results[db+"/qCoverage limit"])
		require.Equal(t, "fw\t0\t99\t1\t200\t5\t1\n", results[db+"/qCoverage hostile"])
		// Only the event clock, only buckets with an expectation (fw at +60 s, not +120 s).
		require.Equal(t, "fw\t1\t4\n", results[db+"/qCoverageReceived"])
		require.Equal(t, "Zeta\t2\t3\t1.5\t4.5\t3\t1\ndns\t1\t1\t0.5\t2\t1\t1\n", results[db+"/qCoverage only"])
		require.Equal(t, "fw\t1\t4\n", results[db+"/qCoverageReceived only"])
		// Rows and distinct buckets: fw's first bucket was written twice.
		require.Equal(t, "Zeta\t2\t3\t1.5\t4.5\t3\t1\t1\ndns\t1\t1\t0.5\t2\t1\t1\t1\n"+
			"fw\t0\t21\t10.5\t42\t18\t2\t1\nfw\t1\t4\t2\t8\t0\t1\t1\nfw\t5\t2\t1\t3\t2\t1\t1\n", results[db+"/qCoverageFast"])
		require.Equal(t, "fw\t0\t99\t1\t200\t5\t1\t1\n", results[db+"/qCoverageFast hostile"])
		require.Equal(t, "firewall\t0\t12\nfirewall\t1\t7\nfirewall\t2\t5\nfw\t1\t4\nfw\t2\t9\n", results[db+"/qCoverageCounts"])
		require.Equal(t, "", results[db+"/qCoverageReceived hostile"])
		require.Equal(t, "2\t2025-11-20 10:30:00\t[4,0,1]\n", results[db+"/qDetectProgress"])
		require.Equal(t, "id-g1-0\tio.gapwatch.gap.opened\t2025-11-20 10:10:00\tk\t{}\t0\t0\nid-g2-0\tio.gapwatch.gap.opened\t2025-11-20 10:10:00\tk\t{}\t0\t0\n", results[db+"/qBatchAlerts"])
		require.Equal(t, "g1\tacme\tfw\tsilence\t2025-11-20 10:00:00\t2025-11-20 10:02:00\t1970-01-01 00:00:00\t10\t0\t10\t0\t0\n"+
			"g2\tx\\' OR \\'1\\'=\\'1\tfw\tsilence\t2025-11-20 10:00:00\t2025-11-20 10:02:00\t2025-11-20 10:20:00\t30\t0\t30\t0\t0\n", results[db+"/qGaps all"])
		require.Equal(t, "g1\tacme\tfw\tsilence\t2025-11-20 10:00:00\t2025-11-20 10:02:00\t1970-01-01 00:00:00\t10\t0\t10\t0\t0\n", results[db+"/qGaps open"])
		require.Equal(t, "s1\tx\\' OR \\'1\\'=\\'1\t\t2025-11-20 10:00:00\t2025-11-20 12:00:00\tpatch\t2025-11-20 09:46:40\n", results[db+"/qSilences"])
		require.Equal(t, "g2", strings.SplitN(results[db+"/qGaps tenant"], "\t", 2)[0])
		require.Equal(t, "g2", strings.SplitN(results[db+"/qGaps after"], "\t", 2)[0], "the page after g1")
		require.Equal(t, 1, strings.Count(results[db+"/qGaps after"], "\n"))
		require.Equal(t, "", results[db+"/qOffsets after drop"])
	}
}
