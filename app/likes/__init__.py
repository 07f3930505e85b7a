"""Likes: who likes which repo, the count shown with it, and the lists the client reads."""
