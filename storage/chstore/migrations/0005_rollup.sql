-- The hourly rollup leaves the insert path (docs/clickhouse.md, "Hourly rollup"):
-- the materialized view re-inserted every counts block into counts_hourly, half of
-- ClickHouse's work per insert. Instead each closed write day of counts is rolled
-- up once (Store.Rollup), stamped with a token; a row in rollups, written only
-- after every row of the day is in and checked, says which token's rows are the
-- day's. Readers take rolled-up days from counts_rollup and the others from
-- counts; the days the view had rolled up (before yesterday) stay in
-- counts_hourly, marked by token 0.
DROP TABLE IF EXISTS {{.DB}}.counts_hourly_mv;

CREATE TABLE IF NOT EXISTS {{.DB}}.counts_rollup (
    day Date,
    token UInt64,
    tenant {{.Str}},
    source {{.Str}},
    clock UInt8,
    hour DateTime{{.TimeCodec}},
    events UInt64{{.CountCodec}}
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (tenant, source, clock, hour);

CREATE TABLE IF NOT EXISTS {{.DB}}.rollups (
    day Date,
    token UInt64,
    events UInt64,
    rolled_at DateTime
) ENGINE = MergeTree
ORDER BY (day, token);

-- Running this again marks the same days again: readers take one token per day.
INSERT INTO {{.DB}}.rollups (day, token, events, rolled_at)
SELECT day, toUInt64(0), sum(events), now() FROM {{.DB}}.counts_hourly WHERE day < yesterday() GROUP BY day;
