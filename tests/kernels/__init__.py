"""Tests for jkctl.kernels."""
