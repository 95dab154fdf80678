"""Humans in the loop: `prefmill annotate`, a small web app that shows a build's items to annotators
(``app.py``, ``pages.py``), keeps every verdict durably (``store.py``), chooses the items worth a
human's time under a budget (``select.py``), and publishes the verdicts as a `judgments` version
(``publish.py``). ``server.py`` starts a session."""
