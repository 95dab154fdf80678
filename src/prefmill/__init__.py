"""prefmill: prompts in, versioned preference datasets out.

Stages (Prefect flows) materialize versioned Parquet tables:
prompts -> candidates -> judgments -> pairs / points / lists.
"""

__version__ = "0.1.0"
