"""Every judge kind, found as the modules of this package; what the rest of prefmill asks about them.

The recipe's ``JudgeConfig`` union and ``JUDGE_MODELS``, the built-in template names, the
fingerprints that enter the judgments version and the traits the flows, the fidelity report and the
docs use are all built here from the kind modules' ``KIND``: nothing lists the kinds by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field

from prefmill.errors import PrefmillError
from prefmill.tasks.evaluation.judges import __path__ as _package_path
from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits

_NOT_KINDS = frozenset({"base", "registry"})


def _discover() -> dict[str, JudgeKind]:
    found: list[JudgeKind] = []
    for info in pkgutil.iter_modules(_package_path):
        if info.name in _NOT_KINDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, JudgeKind):
            raise TypeError(f"judge kind module {module.__name__} defines no KIND = JudgeKind(...)")
        found.append(kind)
    found.sort(key=lambda k: (k.traits.order, k.name))
    kinds = {k.name: k for k in found}
    if len(kinds) != len(found):
        raise TypeError("two judge kind modules declare the same kind")
    return kinds


#: kind -> its declaration, in docs order.
KINDS: dict[str, JudgeKind] = _discover()
#: kind -> its recipe config model.
JUDGE_MODELS: dict[str, type[JudgeSection]] = {name: k.config for name, k in KINDS.items()}
KNOWN_JUDGES: tuple[str, ...] = tuple(KINDS)

# One class per adjudicator kind; `kind` picks it. A bare string in `judges` is short for {kind: ...}.
JudgeConfig = Annotated[Union[tuple(JUDGE_MODELS.values())], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007

#: Built-in judge templates (prefmill/templates/judges/<name>.j2), from the kinds' declarations.
BUILTIN_TEMPLATES: tuple[str, ...] = tuple(
    dict.fromkeys(t for k in KINDS.values() for t in k.traits.templates)
)

#: ``kind`` column values of the rows that count as gold by default, and the fixed judge names
#: among them that do not (the length heuristic writes verifier rows but is no ground truth).
GOLD_ROW_KINDS: frozenset[str] = frozenset(
    k.traits.row_kind for k in KINDS.values() if k.traits.gold and k.traits.row_kind
)
NOT_GOLD_NAMES: frozenset[str] = frozenset(
    k.traits.judge_name
    for k in KINDS.values()
    if not k.traits.gold and k.traits.row_kind in GOLD_ROW_KINDS and k.traits.judge_name
)


def judge_kind(judge: str | Any) -> JudgeKind:
    """The declaration of a judge kind (a kind name or a judge config); unknown kinds are a
    ``PrefmillError`` naming the known ones."""
    name = judge if isinstance(judge, str) else judge.kind
    try:
        return KINDS[name]
    except KeyError:
        raise PrefmillError(
            f"unknown judge {name!r}: known judges are {', '.join(KINDS)}; fix the evaluation judges "
            "in the recipe"
        ) from None


def judge_traits(judge: str | Any) -> JudgeTraits:
    return judge_kind(judge).traits


def fingerprint(config: Any) -> dict[str, Any] | None:
    """What besides its config decides a judge's verdicts (templates' text, parser version), or None
    when its config says it all."""
    kind = judge_kind(config)
    return None if kind.fingerprint is None else kind.fingerprint(config)


def resolve_paths(config: Any, base_dir: str | Path) -> Any:
    """``config`` with its template paths made absolute (relative ones are relative to ``base_dir``)."""
    update = {}
    for name in judge_traits(config).template_fields:
        value = getattr(config, name, None)
        if value is not None and not Path(value).is_absolute():
            update[name] = str(Path(base_dir) / value)
    return config.model_copy(update=update) if update else config


def judge_engines(configs: Iterable[Any | Mapping[str, Any]]) -> dict[str, str]:
    """judge name -> engine of the judges whose verdicts come from a model engine (for the fidelity
    report's self-preference). ``configs`` are judge configs or their JSON dumps (a manifest's)."""
    out: dict[str, str] = {}
    for config in configs:
        if isinstance(config, Mapping):
            kind = KINDS.get(str(config.get("kind")))
            if kind is None or not config.get("engine"):
                continue
            fields = {k: v for k, v in config.items() if k in kind.config.model_fields}
            config = kind.config.model_construct(**fields)  # stored configs: no validation
        traits = judge_traits(config)
        if traits.engine and traits.row_kind is not None:
            out[config.judge_name] = config.engine
    return out
