package detect

// WithDefaults returns c with every unset field at its default, for showing the
// effective configuration (gapwatch check-config).
func (c Config) WithDefaults() Config { return c.withDefaults() }
