-- Planned maintenance windows. Append-only: a change or a deletion is a new row
-- with a higher version; readers take each id's latest row.
CREATE TABLE IF NOT EXISTS {{.DB}}.silences (
    id String,
    tenant String,
    source String,
    starts_at DateTime,
    ends_at DateTime,
    comment String,
    created_at DateTime,
    version UInt64,
    deleted UInt8
) ENGINE = MergeTree
ORDER BY id;
