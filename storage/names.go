package storage

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// The times a query may name: answers outside them would mean nothing, and
// time arithmetic past them saturates (time.Time.Sub spans ±292 years).
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckTime reports a time outside [MinTime, MaxTime]; name says which.
func CheckTime(name string, t time.Time) error {
	if t.Before(MinTime) || t.After(MaxTime) {
		return fmt.Errorf("%w: %s must lie between %d and %d", ErrBadQuery, name, MinTime.Year(), MaxTime.Year())
	}
	return nil
}

// CheckName reports a tenant or source name that cannot be one: invalid
// UTF-8 or a control character (C0 such as NUL, CR and LF, DEL, or C1);
// kind says which name.
func CheckName(kind, name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrBadQuery, kind)
	}
	for i, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return fmt.Errorf("%w: %s has the control character %U at byte %d", ErrBadQuery, kind, r, i)
		}
	}
	return nil
}
