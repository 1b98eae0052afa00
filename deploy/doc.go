// Package deploy holds what starts gapwatch and its servers: services.sh (local Kafka and
// ClickHouse for development and CI), the container image (Dockerfile) and the variables of the
// docker-compose stack (compose.env.example); its test validates docker-compose.yml.
package deploy
