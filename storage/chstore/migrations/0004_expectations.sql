-- What live detection expected of each stream in each judged arrival bucket,
-- with its band and what it observed. A restarted or replicated detector
-- writes the same rows again: readers take any one row per (tenant, source,
-- bucket). Partitioned by the bucket's UTC day, so retention drops rows by the
-- day they describe (RetentionDays, as raw counts).
CREATE TABLE IF NOT EXISTS {{.DB}}.expectations (
    day Date,
    tenant {{.Str}},
    source {{.Str}},
    bucket DateTime{{.TimeCodec}},
    expected Float64,
    lower Float64,
    upper Float64,
    observed UInt64{{.CountCodec}},
    state {{.Str}}
) ENGINE = MergeTree
PARTITION BY day
ORDER BY (tenant, source, bucket);
