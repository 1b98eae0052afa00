-- Event counts per stream, bucket and clock, one row per batch that counted them,
-- plus one progress row per Kafka partition and batch (tenant = '', see docs/exactly-once.md).
-- Every row of one insert has the same day, so an insert is one part: atomic.
CREATE TABLE IF NOT EXISTS {{.DB}}.counts (
    day Date,
    tenant {{.Str}},
    source {{.Str}},
    clock UInt8,
    bucket DateTime{{.TimeCodec}},
    events UInt64{{.CountCodec}},
    lateness Array(UInt64),
    topic {{.Str}},
    partition Int32,
    next_offset Int64,
    arrival_hw DateTime{{.TimeCodec}}
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (tenant, source, clock, bucket);

-- Hourly rollup for long ranges, filled by the view below in the same insert.
CREATE TABLE IF NOT EXISTS {{.DB}}.counts_hourly (
    day Date,
    tenant {{.Str}},
    source {{.Str}},
    clock UInt8,
    hour DateTime{{.TimeCodec}},
    events UInt64{{.CountCodec}}
) ENGINE = SummingMergeTree(events)
PARTITION BY day
ORDER BY (tenant, source, clock, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.counts_hourly_mv TO {{.DB}}.counts_hourly AS
SELECT day, tenant, source, clock, toDateTime(intDiv(toUInt32(bucket), 3600) * 3600) AS hour, sum(events) AS events
FROM {{.DB}}.counts
WHERE tenant != ''
GROUP BY day, tenant, source, clock, hour;
