"""Configuration of the queue side: `settings` (every environment read, in one object) and
`env_reader` (the typed reads both sides use, and their one-line errors)."""
