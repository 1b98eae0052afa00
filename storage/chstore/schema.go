package chstore

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Features are the server capabilities the schema may use. Modern DDL
// (LowCardinality, column codecs) is only used on servers known to have it.
type Features struct {
	Modern bool // ClickHouse 20.1 or newer
}

// FeaturesOf returns what a server of the given version() string supports.
func FeaturesOf(version string) (Features, error) {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return Features{}, fmt.Errorf("unrecognised ClickHouse version %q", version)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return Features{}, fmt.Errorf("unrecognised ClickHouse version %q", version)
	}
	return Features{Modern: major >= 20}, nil
}

// Migration is one numbered schema step: statements run in order, each idempotent.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ValidDatabase reports whether name is usable as a database name without quoting tricks.
func ValidDatabase(name string) error {
	if !identRE.MatchString(name) {
		return fmt.Errorf("database name %q: want letters, digits and _ (not starting with a digit), at most 64", name)
	}
	return nil
}

// Migrations renders the embedded schema for database db on a server with f.
func Migrations(db string, f Features) ([]Migration, error) {
	if err := ValidDatabase(db); err != nil {
		return nil, err
	}
	vars := struct{ DB, Str, TimeCodec, CountCodec string }{DB: "`" + db + "`", Str: "String"}
	if f.Modern {
		vars.Str = "LowCardinality(String)"
		vars.TimeCodec = " CODEC(DoubleDelta, LZ4)"
		vars.CountCodec = " CODEC(T64, LZ4)"
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", base)
		}
		raw, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		tpl, err := template.New(base).Option("missingkey=error").Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		var buf bytes.Buffer
		if err := tpl.Execute(&buf, vars); err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(base, ".sql"), Statements: splitStatements(buf.String())})
	}
	return out, nil
}

// splitStatements splits a schema file on semicolons at line ends and drops
// comment-only lines. Schema files must not put ';' at a line end inside a string.
func splitStatements(src string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// Migrate creates the database and applies every migration newer than the
// recorded schema version. It is safe to run again and from several processes
// in sequence (each statement is idempotent).
func (s *Store) Migrate(ctx context.Context) ([]Migration, error) {
	migs, err := Migrations(s.cfg.Database, s.features)
	if err != nil {
		return nil, err
	}
	if err := s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.db); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", s.cfg.Database, err)
	}
	if err := s.conn.Exec(ctx, s.q(qCreateMigrations)); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	var applied []Migration
	for _, m := range migs {
		if m.Version <= current {
			continue
		}
		for i, stmt := range m.Statements {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %s statement %d: %w", m.Name, i+1, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return applied, fmt.Errorf("recording migration %s: %w", m.Name, err)
		}
		applied = append(applied, m)
	}
	return applied, nil
}

// recordMigration inserts m into schema_migrations. Inserts go through the
// native block protocol: a bound INSERT ... VALUES through Exec stalls on 18.16.
func (s *Store) recordMigration(ctx context.Context, m Migration) error {
	b, err := s.conn.PrepareBatch(ctx, s.q(qInsertMigration))
	if err != nil {
		return err
	}
	if err := b.Append(uint32(m.Version), m.Name); err != nil {
		return err
	}
	return b.Send()
}

// SchemaVersion returns the highest applied migration, 0 if none.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v uint32
	if err := s.conn.QueryRow(ctx, s.q(qSchemaVersion)).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v), nil
}

// LatestVersion is the schema version this build expects.
func LatestVersion() int {
	migs, err := Migrations("x", Features{})
	if err != nil || len(migs) == 0 {
		return 0
	}
	return migs[len(migs)-1].Version
}
