"""The queue side of the job service: store, job rules, tasks and the pipeline.

Nothing under this package imports Flask (an import-linter contract in setup.cfg)."""
