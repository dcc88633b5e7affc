"""Tests for jkctl.daemon."""
