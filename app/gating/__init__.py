"""Gated repos: access requests, their review, and the check every content reader makes."""
