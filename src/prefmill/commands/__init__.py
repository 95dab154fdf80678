"""Bodies of CLI commands that live outside cli.py (cli.py registers them in a few lines)."""
