"""The chaos test (`make chaos`, `make chaos-short`): the whole service as separate processes
under load while workers, web workers and PostgreSQL are killed, stopped and restarted;
then a table of what must hold (docs/operations.md, "Chaos test")."""
