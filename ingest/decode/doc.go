// Package decode reads the tenant, source and event time of every countable
// record out of one raw log message (a Kafka message value): plain JSON events
// and the Azure Monitor and CloudTrail envelopes, with field paths configured
// per topic (FieldConfig). It is pure — no I/O, no goroutines — allocation-free
// per event once warm, and fuzzed against a fastjson reference decoder.
//
// The JSON is checked strictly (RFC 8259) and then walked without building a
// tree (extract.go); event times are parsed by ParseTime (time.go). Anything
// that cannot be counted is reported with a Reason and a short detail, never
// guessed.
package decode
