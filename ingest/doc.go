// Package ingest consumes raw log messages from Kafka, decodes tenant, source
// and event time from each record, counts events per stream and bucket on two
// clocks, and hands batches with their Kafka offsets to a durable sink.
package ingest
