"""What a judge kind declares: its config base class, its traits and its entry points."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from prefmill.section import _Section

if TYPE_CHECKING:
    import pyarrow as pa

#: The ``kind`` column of the ``judgments`` rows a judge writes (DESIGN §2).
RowKind = Literal["llm", "verifier", "reward_model", "human"]
#: Where a judge's work goes: judgments rows per candidates shard, one extra judgments shard after
#: the candidate shards (imported verdicts), or new candidates before the judges run (revisions).
Output = Literal["shard", "extra_shard", "candidates"]


class JudgeSection(_Section):
    """Base of every judge config: a recipe section with a ``kind`` tag."""

    kind: str


@dataclass(frozen=True)
class JudgeTraits:
    """What the flows, the fidelity report and the docs need to know about a judge kind."""

    summary: str  # one line: what it does
    row_kind: RowKind | None  # `kind` of its judgments rows; None: it writes no judgments
    engine: bool = False  # judged by a model engine named in its `engine` field (kind:model)
    ensemble: bool = False  # runs after the others, on the rows they wrote for the shard
    output: Output = "shard"
    gold: bool = False  # its verdicts count as gold for fidelity unless `gold_judges` says otherwise
    calibrated: bool = False  # judges the calibration pairs of `evaluation.fidelity.calibration`
    templates: tuple[str, ...] = ()  # built-in templates it ships (prefmill/templates/judges/<name>.j2)
    template_fields: tuple[str, ...] = ()  # config fields holding template paths (recipe-relative)
    judge_name: str | None = None  # the fixed `judge` of its rows, for kinds without a `name` field
    order: int = 1000  # position in the docs and in error messages (then by kind)
    #: the units it labels: step-level kinds get the recipe's `steps` segmenter (their `segmenter`)
    granularity: Literal["outcome", "step", "atomic"] = "outcome"


#: (config, candidates shard) -> judgments rows; ensemble judges also get the shard's prior rows.
Runner = Callable[..., "pa.Table"]
#: config -> what besides its config decides its verdicts (templates' text, parser version).
Fingerprint = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class JudgeKind:
    """One judge kind: its recipe config model, traits and work."""

    config: type[JudgeSection]
    traits: JudgeTraits
    run: Runner
    fingerprint: Fingerprint | None = None

    @property
    def name(self) -> str:
        """The recipe tag: the one value of the config's ``kind`` literal."""
        (tag,) = get_args(self.config.model_fields["kind"].annotation)
        return str(tag)


def no_rows(_config: Any, _cands: pa.Table) -> pa.Table:
    """The runner of kinds that write no judgments per shard (imported verdicts, revisions)."""
    from prefmill.storage.schemas import empty_table

    return empty_table("judgments")


def with_reference(cands: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    return cands.filter(pc.is_valid(cands.column("reference")))


def without_reference(cands: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    return cands.filter(pc.is_null(cands.column("reference")))
