package live

// WithDefaults returns c, its engine's settings included, with every unset field
// at its default, for showing the effective configuration (gapwatch check-config).
func (c Config) WithDefaults() Config {
	c = c.withDefaults()
	c.Engine = c.Engine.WithDefaults()
	return c
}
