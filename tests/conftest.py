"""Shared test setup. Unit tests need nothing; integration fixtures live in integration/."""
