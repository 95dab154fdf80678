"""Bodies of CLI commands, one module each; cli.py registers them."""
