-- The detector's alerts, one row per alert event, plus one progress row per
-- detector step (type = ''), written in one insert: every row of an insert has
-- the same day, so an insert is one part, atomic (see docs/exactly-once.md).
-- Gaps are the audit record: kept until dropped by hand, not by retention.
CREATE TABLE IF NOT EXISTS {{.DB}}.alerts (
    day Date,
    shard UInt16,
    shards UInt16,
    seq UInt64,
    pos UInt32,
    type {{.Str}},
    id String,
    time DateTime{{.TimeCodec}},
    key String,
    payload String,
    gap_id String,
    tenant {{.Str}},
    source {{.Str}},
    kind {{.Str}},
    started_at DateTime,
    detected_at DateTime,
    ended_at DateTime,
    expected Float64,
    observed Float64,
    missing Float64,
    gap_seq UInt32,
    planned UInt8,
    suppressed UInt8,
    watermark DateTime,
    alert_offsets Array(Int64)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (shards, shard, seq, pos);
