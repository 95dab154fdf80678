"""Step-level work: cutting responses into steps (``segment``) by the recipe's `steps` section
(``config``)."""
