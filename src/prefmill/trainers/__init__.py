"""Training on prefmill tables with TRL (extra ``train``).

``config`` holds the recipe's ``train:`` / ``iterate:`` sections (pydantic only: the one module of this
package the recipe imports); ``method`` and ``methods/`` declare the training methods, one module each;
``data`` turns tables into TRL rows; ``runner`` runs a TRL trainer; ``evaluate`` scores a checkpoint.
"""
