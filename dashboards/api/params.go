package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gapwatch/gapwatch/storage"
)

// checkNames rejects tenant and source parameters that cannot name a stream
// (control characters such as NUL, CR and LF, or invalid UTF-8): they would
// only reach logs and stores as traps.
func checkNames(v url.Values) error {
	for _, k := range []string{"tenant", "source"} {
		for _, name := range v[k] {
			if err := storage.CheckName(k, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// parsePeriod reads v's required from and to, RFC 3339 (their zones kept).
func parsePeriod(v url.Values) (from, to time.Time, err error) {
	if from, err = time.Parse(time.RFC3339, v.Get("from")); err != nil {
		return from, to, fmt.Errorf("from: want RFC 3339: %w", err)
	}
	if to, err = time.Parse(time.RFC3339, v.Get("to")); err != nil {
		return from, to, fmt.Errorf("to: want RFC 3339: %w", err)
	}
	return from, to, nil
}

// NextCursorHeader carries, on a gap listing cut at its limit, the cursor
// parameter that asks for the rest.
const NextCursorHeader = "X-Gapwatch-Next-Cursor"

type cursorJSON struct {
	T  int64  `json:"t"` // started_at, Unix seconds
	ID string `json:"id"`
}

// encodeCursor makes c a URL-safe opaque parameter.
func encodeCursor(c storage.GapCursor) string {
	b, _ := json.Marshal(cursorJSON{T: c.StartedAt.Unix(), ID: c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (storage.GapCursor, error) {
	var c cursorJSON
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return storage.GapCursor{}, errors.New("cursor: not one this API handed out")
	}
	return storage.GapCursor{StartedAt: time.Unix(c.T, 0).UTC(), ID: c.ID}, nil
}

// gapPage reads v's limit (1 to storage.MaxGaps; default the most) and cursor into q.
func gapPage(v url.Values, q *storage.GapQuery) error {
	q.Limit = storage.MaxGaps
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > storage.MaxGaps {
			return fmt.Errorf("limit: want 1 to %d", storage.MaxGaps)
		}
		q.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		var err error
		if q.After, err = decodeCursor(c); err != nil {
			return err
		}
	}
	return nil
}
