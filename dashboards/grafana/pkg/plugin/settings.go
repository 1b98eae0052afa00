package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Settings are one datasource instance's settings, as Grafana stores them.
type Settings struct {
	// URL is the gapwatch API's base URL, e.g. http://gapwatch:8080 (the
	// datasource's top-level url; jsonData.url is read when that is empty).
	URL string `json:"url"`
	// Bucket is gapwatch's rate bucket width (GAPWATCH_BUCKET); query
	// intervals are rounded up to a multiple of it. Default 1m.
	Bucket Duration `json:"bucket"`
	// APIToken is sent as "Authorization: Bearer <token>". Only ever read
	// from secureJsonData.apiToken; never marshalled or logged.
	APIToken string `json:"-"`
}

// Duration is a time.Duration that reads from JSON as a Go duration string
// ("1m") or a number of seconds.
type Duration time.Duration

// UnmarshalJSON reads "1m" or 60.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*d = 0
	case float64:
		*d = Duration(time.Duration(x * float64(time.Second)))
	case string:
		if x == "" {
			*d = 0
			return nil
		}
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("want a duration such as 1m: %w", err)
		}
		*d = Duration(p)
	default:
		return fmt.Errorf("want a duration such as \"1m\", got %s", b)
	}
	return nil
}

const defaultBucket = time.Minute

// LoadSettings reads and checks s. Its errors name the setting at fault and
// never contain the token.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var out Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &out); err != nil {
			return Settings{}, fmt.Errorf("reading the datasource's jsonData: %w", err)
		}
	}
	if s.URL != "" {
		out.URL = s.URL
	}
	out.APIToken = strings.TrimSpace(s.DecryptedSecureJSONData["apiToken"])
	if out.Bucket == 0 {
		out.Bucket = Duration(defaultBucket)
	}
	return out, out.Validate()
}

// Validate reports settings that can never work.
func (s Settings) Validate() error {
	if s.URL == "" {
		return errors.New("no URL: set the gapwatch API's base URL, e.g. http://gapwatch:8080")
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which might hold a password
		}
		return fmt.Errorf("URL is not a valid URL: %w", err)
	}
	if u.User != nil {
		return errors.New("URL: put no credentials in the URL; the API token goes in its own secret field")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: want http:// or https:// and the gapwatch API's host and port", s.URL)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", s.URL)
	}
	b := time.Duration(s.Bucket)
	if b < time.Second || b%time.Second != 0 {
		return fmt.Errorf("bucket %s: want a whole number of seconds, the gapwatch bucket width (GAPWATCH_BUCKET)", b)
	}
	return nil
}
