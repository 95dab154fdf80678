"""Bodies of CLI commands that need more than a few lines (registered in ``prefmill.cli``)."""
