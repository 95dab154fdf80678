"""The numbers an instantiation output's manifest carries (label balance, groups, prompts covered, what
selection removed and why), counted over the output's batches as they stream to the writer: the rows
are read once, for the file and the figures together, and never kept whole."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def _add_counts(counts: Counter[str], column: pa.ChunkedArray | pa.Array) -> None:
    for c in pc.value_counts(column).to_pylist():
        counts[str(c["values"])] += int(c["counts"])


def _true_count(column: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(pc.cast(column, pa.int64())).as_py() or 0)


class OutputStats:
    """Figures of one output, added batch by batch (``add``) and read at the end (``result``)."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.rows = 0
        self._prompts: set[Any] = set()
        self._criteria: Counter[str] = Counter()
        self._strategies: Counter[str] = Counter()
        self._criterion = False
        self._desirable = 0
        self._margin = 0.0
        self._zero_variance: int | None = None

    def add(self, table: pa.Table) -> None:
        """Count the kept rows of one batch."""
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        self._prompts.update(pc.unique(table.column("prompt_id")).drop_null().to_pylist())
        if "criterion" in table.column_names:
            self._criterion = True
            _add_counts(self._criteria, table.column("criterion"))
        if self.output == "points":
            self._desirable += _true_count(table.column("label"))
        if self.output == "pairs":
            self._margin += float(pc.sum(table.column("margin")).as_py() or 0.0)
            _add_counts(self._strategies, table.column("strategy"))
        if self.output == "lists" and "zero_variance" in table.column_names:
            self._zero_variance = (self._zero_variance or 0) + _true_count(table.column("zero_variance"))

    def result(self, removed: dict[str, int] | None = None) -> dict[str, Any]:
        """The manifest's figures; with ``removed`` (rows selection dropped, by reason) also those
        and ``rows_before_selection``."""
        stats: dict[str, Any] = {}
        if removed is not None:
            stats["rows_before_selection"] = self.rows + sum(removed.values())
            stats["removed"] = dict(removed)
        if self.rows == 0:
            return stats
        stats["prompts"] = len(self._prompts)
        if self._criterion:
            stats["criteria"] = dict(sorted(self._criteria.items()))
        if self.output == "points":
            undesirable = self.rows - self._desirable
            stats.update(desirable=self._desirable, undesirable=undesirable)
            stats["desirable_ratio"] = round(self._desirable / undesirable, 6) if undesirable else None
        if self.output == "pairs":
            stats["mean_margin"] = round(self._margin / self.rows, 6)
            stats["strategies"] = dict(sorted(self._strategies.items()))
        if self._zero_variance is not None:
            stats["zero_variance_groups"] = self._zero_variance
        return stats


def output_stats(output: str, table: pa.Table, removed: dict[str, int] | None = None) -> dict[str, Any]:
    """``OutputStats`` of one whole table."""
    stats = OutputStats(output)
    stats.add(table)
    return stats.result(removed)
