// Package ingest consumes raw log messages from Kafka as one member of a
// consumer group, decodes tenant, source and event time from each record
// (package decode), counts events per stream and bucket on two clocks, and
// hands batches with their Kafka offsets to a durable sink; what cannot be
// counted goes to dead-letter topics.
package ingest
