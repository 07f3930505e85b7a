"""Collections: curated, ordered lists of repos (and other collections), with notes."""
