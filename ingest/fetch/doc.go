// Package fetch reads one Kafka partition by speaking the Fetch API itself
// (v4–v11) on a connection that kafka-go's Dialer opens: leader lookup, SASL
// and ApiVersions stay kafka-go's, TLS is done with the Dialer's settings by a
// buffered copy of it (dialer.go), and record batches (message format
// v2, every codec Kafka producers use) are parsed in place from a reused
// buffer, so that reading costs no allocation, goroutine or channel send per
// record. A Reader is configured by value (Config) and knows nothing of what
// its caller does with the records. See docs/ingest-speed.md.
package fetch
