package ingest

// Failpoints of the write path (see package internal/failpoint): the crash
// tests SIGKILL an ingest process at these exact points.
const (
	failBeforeWrite = "before-write" // a batch is taken, its dead letters published, counts not stored
	failAfterWrite  = "after-write"  // counts and offsets stored, Kafka commit not done
)
