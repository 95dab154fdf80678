"""Trainer flow that consumes prefmill tables with TRL (extra ``train``).

Not built yet: the `train` flow, TRL configs and the closed loop are tracked in issue 6. Tables
produced by `build` (pairs / points / lists) already follow the columns TRL expects after export.
"""
