package storage

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Silence is a planned maintenance window: gaps of the matching streams that
// start or are detected inside it are recorded as planned and not alerted.
type Silence struct {
	ID       string
	Tenant   string // required
	Source   string // "" = every source of the tenant
	StartsAt time.Time
	EndsAt   time.Time
	Comment  string
	Created  time.Time
}

// Bounds of a silence, so that untrusted input stays small.
const (
	MaxSilences       = 1000
	MaxSilence        = 90 * 24 * time.Hour
	maxSilenceName    = 256
	maxSilenceComment = 1024
)

// Validate checks a silence before it is stored.
func (s Silence) Validate() error {
	switch {
	case s.Tenant == "":
		return fmt.Errorf("%w: tenant is required", ErrBadQuery)
	case len(s.Tenant) > maxSilenceName || len(s.Source) > maxSilenceName:
		return fmt.Errorf("%w: tenant and source are at most %d bytes", ErrBadQuery, maxSilenceName)
	case len(s.Comment) > maxSilenceComment:
		return fmt.Errorf("%w: comment is at most %d bytes", ErrBadQuery, maxSilenceComment)
	case !utf8.ValidString(s.Tenant + s.Source + s.Comment):
		return fmt.Errorf("%w: tenant, source and comment must be UTF-8", ErrBadQuery)
	case CheckName("tenant", s.Tenant) != nil:
		return CheckName("tenant", s.Tenant)
	case CheckName("source", s.Source) != nil:
		return CheckName("source", s.Source)
	case CheckTime("starts_at", s.StartsAt) != nil || CheckTime("ends_at", s.EndsAt) != nil:
		return fmt.Errorf("%w: starts_at and ends_at must lie between %d and %d", ErrBadQuery, MinTime.Year(), MaxTime.Year())
	case !s.StartsAt.Before(s.EndsAt):
		return fmt.Errorf("%w: starts_at must be before ends_at", ErrBadQuery)
	case s.EndsAt.Sub(s.StartsAt) > MaxSilence:
		return fmt.Errorf("%w: a silence lasts at most %s", ErrBadQuery, MaxSilence)
	}
	return nil
}

// Covers reports whether the silence covers stream (tenant, source) at t.
func (s Silence) Covers(tenant, source string, t time.Time) bool {
	return s.Tenant == tenant && (s.Source == "" || s.Source == source) && !t.Before(s.StartsAt) && t.Before(s.EndsAt)
}
