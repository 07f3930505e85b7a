"""Per-namespace storage quotas: how much a namespace stores, and refusing uploads past it."""
