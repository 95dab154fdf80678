"""Built-in recipe templates (`prefmill init TEMPLATE` copies them)."""
