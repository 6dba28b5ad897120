"""Test helpers for record processors."""
