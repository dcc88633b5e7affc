"""Tests for jkctl.cli."""
