package chstore

// Every statement gapwatch sends to ClickHouse, in one place so that the SQL check
// (TestStatementsOnCurrentClickHouse) can run each on current ClickHouse through chDB
// as well as on the CI server. They must run on ClickHouse 18.16 and on current
// releases: intDiv bucketing, no WITH FILL, columns always named in INSERT.
// {db} is replaced by the validated, backquoted database name; ? are bound by the driver.
const (
	qCreateMigrations = `CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = TinyLog`
	qInsertMigration  = `INSERT INTO {db}.schema_migrations (version, name)`
	qSchemaVersion    = `SELECT toUInt32(max(version)) FROM {db}.schema_migrations`

	qInsertCounts = `INSERT INTO {db}.counts (day, tenant, source, clock, bucket, events, lateness, topic, partition, next_offset, arrival_hw)`

	qOffsets = `SELECT topic, partition, max(next_offset), max(arrival_hw) FROM {db}.counts WHERE tenant = '' GROUP BY topic, partition`

	qRatesRaw = `SELECT toInt64(intDiv(toInt64(toUInt32(bucket)) - ?, ?)) AS i, toUInt64(sum(events)) AS n
FROM {db}.counts
WHERE tenant = ? AND source = ? AND clock = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?)
GROUP BY i`

	// Whole-hour steps (Store.Rates) read each write day from one place: the
	// rolled-up days from counts_rollup (the token of the day's marker, one of
	// {pairs}), the days the old view rolled up from counts_hourly ({days}: those
	// marked with token 0), the others raw ({days}: every marked day).
	qRatesRolled = `SELECT toInt64(intDiv(toInt64(toUInt32(hour)) - ?, ?)) AS i, toUInt64(sum(events)) AS n
FROM {db}.counts_rollup
WHERE tenant = ? AND source = ? AND clock = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) AND (day, token) IN ({pairs})
GROUP BY i`

	qRatesHourly = `SELECT toInt64(intDiv(toInt64(toUInt32(hour)) - ?, ?)) AS i, toUInt64(sum(events)) AS n
FROM {db}.counts_hourly
WHERE tenant = ? AND source = ? AND clock = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) AND day IN ({days})
GROUP BY i`

	qRatesUnrolled = `SELECT toInt64(intDiv(toInt64(toUInt32(bucket)) - ?, ?)) AS i, toUInt64(sum(events)) AS n
FROM {db}.counts
WHERE tenant = ? AND source = ? AND clock = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?) AND day NOT IN ({days})
GROUP BY i`

	// Each day's marker with the smallest token: every marker's rows are
	// complete, so any one would do; this one is what every reader picks.
	qRollupMarkers = `SELECT toString(day), min(token) FROM {db}.rollups GROUP BY day`

	// Write days of counts before ? (closed) not rolled up yet.
	qRollupDue = `SELECT DISTINCT toString(day) FROM {db}.counts WHERE day < toDate(?) AND day NOT IN (SELECT day FROM {db}.rollups)`

	qRollupRaw = `SELECT count(), toUInt64(sum(events)) FROM {db}.counts WHERE day = toDate(?) AND tenant != ''`

	// One of ? slices (by a hash of the stream) of a day: bounded memory for
	// the GROUP BY however many streams a day holds.
	qRollupInsert = `INSERT INTO {db}.counts_rollup (day, token, tenant, source, clock, hour, events)
SELECT day, toUInt64(?), tenant, source, clock, toDateTime(intDiv(toUInt32(bucket), 3600) * 3600) AS hour, sum(events)
FROM {db}.counts
WHERE day = toDate(?) AND tenant != '' AND cityHash64(tenant, source) % ? = ?
GROUP BY day, tenant, source, clock, hour`

	qRollupCheck = `SELECT toUInt64(sum(events)) FROM {db}.counts_rollup WHERE day = toDate(?) AND token = ?`

	qInsertRollupMarker = `INSERT INTO {db}.rollups (day, token, events, rolled_at)`

	qBucketCounts = `SELECT tenant, source, toInt64(toUInt32(bucket)) AS b, toUInt64(sum(events)) AS n, sumForEach(lateness) AS l,
	toInt64(toUInt32(min(arrival_hw))) AS f
FROM {db}.counts
WHERE tenant != '' AND clock = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?)
GROUP BY tenant, source, b`

	// One stream's bucket counts (Store.StreamBucketCounts), as qBucketCounts.
	qStreamBucketCounts = `SELECT toInt64(toUInt32(bucket)) AS b, toUInt64(sum(events)) AS n, sumForEach(lateness) AS l,
	toInt64(toUInt32(min(arrival_hw))) AS f
FROM {db}.counts
WHERE tenant = ? AND source = ? AND clock = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?)
GROUP BY b
ORDER BY b`

	// The streams with counts (Store.StreamNames): one tenant's, or every
	// tenant's when both ? are ''.
	qStreamNames = `SELECT tenant, source FROM {db}.counts
WHERE tenant != '' AND (tenant = ? OR ? = '')
GROUP BY tenant, source
ORDER BY tenant, source
LIMIT ?`

	// Followed by one condition per span and the GROUP BY (Store.Arrived).
	qArrived = `SELECT tenant, source, toInt64(toUInt32(bucket)), toInt64(toUInt32(arrival_hw)), toUInt64(sum(events))
FROM {db}.counts
WHERE tenant != '' AND clock = 1 AND arrival_hw >= toDateTime(?) AND arrival_hw < toDateTime(?) AND (`

	qInsertAlerts = `INSERT INTO {db}.alerts (day, shard, shards, seq, pos, type, id, time, key, payload, gap_id, tenant, source, kind, started_at, detected_at, ended_at, expected, observed, missing, gap_seq, planned, suppressed, watermark, alert_offsets)`

	qDetectProgress = `SELECT seq, watermark, alert_offsets FROM {db}.alerts WHERE type = '' AND shard = ? AND shards = ? ORDER BY seq DESC LIMIT 1`

	qBatchAlerts = `SELECT id, type, time, key, payload, planned, suppressed FROM {db}.alerts WHERE type != '' AND shard = ? AND shards = ? AND seq = ? ORDER BY pos`

	// A gap's latest state, folded from its alerts (replicas may have stored the
	// same alerts twice: every aggregate here is insensitive to that).
	qGaps = `SELECT gap_id, any(tenant), any(source), argMax(kind, gap_seq), min(started_at) AS s, min(detected_at), max(ended_at) AS e,
	argMax(expected, gap_seq), argMax(observed, gap_seq), argMax(missing, gap_seq), max(planned),
	maxIf(observed, type = 'io.gapwatch.gap.resolved')
FROM {db}.alerts
WHERE gap_id != '' AND (tenant = ? OR ? = '') AND (source = ? OR ? = '')
GROUP BY gap_id
HAVING (? = 'all' OR (? = 'open') = (e = toDateTime(0))) AND s < toDateTime(?) AND (e = toDateTime(0) OR e > toDateTime(?))
	AND (s > toDateTime(?) OR (s = toDateTime(?) AND gap_id > ?))
ORDER BY s, gap_id
LIMIT ?`

	qInsertSilence = `INSERT INTO {db}.silences (id, tenant, source, starts_at, ends_at, comment, created_at, version, deleted)`

	qSilences = `SELECT id, argMax(tenant, version), argMax(source, version), argMax(starts_at, version), argMax(ends_at, version),
	argMax(comment, version), min(created_at)
FROM {db}.silences
GROUP BY id
HAVING argMax(deleted, version) = 0
ORDER BY min(created_at) DESC, id
LIMIT ?`

	qInsertExpectations = `INSERT INTO {db}.expectations (day, tenant, source, bucket, expected, lower, upper, observed, state)`

	// One stream's expectations summed per step. The inner query keeps one row
	// per bucket (a restarted or replicated detector stores the same rows
	// again), so each bucket counts once.
	qBands = `SELECT toInt64(intDiv(toInt64(toUInt32(b)) - ?, ?)) AS i, sum(e), sum(l), sum(u), toUInt64(sum(o)), toUInt32(count())
FROM (
	SELECT bucket AS b, any(expected) AS e, any(lower) AS l, any(upper) AS u, any(observed) AS o
	FROM {db}.expectations
	WHERE tenant = ? AND source = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?)
	GROUP BY bucket
)
GROUP BY i
ORDER BY i`

	// Every source of one tenant, as qBands, in source then step order; the
	// LIMIT bounds what one answer can hold (see Store.Coverage). {only} is
	// empty, or " AND source IN (?, ...)" to read some sources.
	qCoverage = `SELECT s, toInt64(intDiv(toInt64(toUInt32(b)) - ?, ?)) AS i, sum(e), sum(l), sum(u), toUInt64(sum(o)), toUInt32(count())
FROM (
	SELECT source AS s, bucket AS b, any(expected) AS e, any(lower) AS l, any(upper) AS u, any(observed) AS o
	FROM {db}.expectations
	WHERE tenant = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?){only}
	GROUP BY source, bucket
)
GROUP BY s, i
ORDER BY s, i
LIMIT ?`

	// The events counted by event time in the buckets of qCoverage's
	// expectations, per source and step (Store.Coverage merges the two).
	qCoverageReceived = `SELECT source, toInt64(intDiv(toInt64(toUInt32(bucket)) - ?, ?)) AS i, toUInt64(sum(events))
FROM {db}.counts
WHERE tenant = ? AND clock = 1 AND bucket >= toDateTime(?) AND bucket < toDateTime(?){only}
	AND (source, bucket) IN (
		SELECT source, bucket FROM {db}.expectations WHERE tenant = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?){only})
GROUP BY source, i`

	// Coverage's fast reads (Store.Coverage): the expectations summed per
	// source and step without taking one row per bucket first, with the rows
	// and the distinct buckets summed (equal: no bucket was written twice) ...
	qCoverageFast = `SELECT source, toInt64(intDiv(toInt64(toUInt32(bucket)) - ?, ?)) AS i, sum(expected), sum(lower), sum(upper),
	toUInt64(sum(observed)), toUInt32(count()), toUInt32(uniqExact(bucket))
FROM {db}.expectations
WHERE tenant = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?)
GROUP BY source, i
ORDER BY source, i
LIMIT ?`

	// ... and the events counted by event time per source and step, in every
	// bucket: those of the steps whose every bucket has an expectation.
	qCoverageCounts = `SELECT source, toInt64(intDiv(toInt64(toUInt32(bucket)) - ?, ?)) AS i, toUInt64(sum(events))
FROM {db}.counts
WHERE tenant = ? AND clock = 1 AND bucket >= toDateTime(?) AND bucket < toDateTime(?)
GROUP BY source, i`

	qPartitions    = `SELECT DISTINCT table, partition_id FROM system.parts WHERE database = ? AND active AND table IN ('counts', 'counts_hourly', 'counts_rollup', 'expectations')`
	qDropPartition = `ALTER TABLE {db}.{table} DROP PARTITION ID ?`
)
