"""Following people and organizations: who follows whom, counted in their overviews."""
