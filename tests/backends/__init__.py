"""Tests for jkctl.backends."""
