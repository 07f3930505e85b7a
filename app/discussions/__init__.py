"""Discussions and pull requests: threads, their events (comments, status and title changes,
commits), review and merge."""
