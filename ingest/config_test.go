package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{}.WithDefaults().Validate())
	for name, change := range map[string]func(*Config){
		"no brokers":           func(c *Config) { c.Brokers = nil },
		"bucket not dividing":  func(c *Config) { c.Bucket = 7 * time.Second },
		"negative fetch size":  func(c *Config) { c.FetchMaxBytes = -1 },
		"fetch wait under 1ms": func(c *Config) { c.FetchMaxWait = time.Microsecond; c.IdleAfter = time.Second },
		"write vs rebalance":   func(c *Config) { c.WriteTimeout = time.Minute },
		"bad start offset":     func(c *Config) { c.StartOffset = "middle" },
		"negative idle margin": func(c *Config) { c.IdleMargin = -time.Second },
		"huge idle margin":     func(c *Config) { c.IdleMargin = time.Hour },
		"topic watch too fast": func(c *Config) { c.TopicWatchInterval = time.Millisecond },
	} {
		c := Config{}.WithDefaults()
		change(&c)
		require.Error(t, c.Validate(), name)
	}
}
