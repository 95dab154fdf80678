"""Step-level work: cutting responses into steps (``segment``)."""
