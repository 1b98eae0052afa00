// Package decode reads the tenant, source and event time of every countable
// record out of one raw log message (a Kafka message value): plain JSON events
// and the Azure Monitor and CloudTrail envelopes, with field paths configured
// per topic (FieldConfig). It is pure — no I/O, no goroutines — allocation-free
// per event once warm, and fuzzed against a fastjson reference decoder.
//
// One walk over a message checks it strictly (RFC 8259) and notes where the
// configured fields are, without building a tree (json.go, extract.go); event
// times are parsed by ParseTime (time.go). Anything that cannot be counted is
// reported with a Reason and a short detail, never guessed.
package decode
