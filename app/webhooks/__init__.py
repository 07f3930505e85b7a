"""Webhooks: who is told of what, and the durable queue that tells them."""
