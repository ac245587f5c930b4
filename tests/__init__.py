"""Tests for the job service."""
