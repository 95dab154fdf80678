"""Each stage's slice of a build's plan (``flows.plan``), importable without Prefect: the frozen plan
values and the ``plan_<stage>(recipe)`` functions that resolve them. ``flows.fastpath`` reads them
to find an unchanged build's versions before Prefect starts; the stage flows import them from here."""
