"""The audit log: who changed what that matters to security (issue 10 §8), for admins."""
