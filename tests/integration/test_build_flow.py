"""The quickstart build for real: embedded model, real Prefect flows, real tables; then caching."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from tinybuild import TinyBuild

from prefmill.cli import run
from prefmill.engines.registry import loaded_engines
from prefmill.flows import BuildSummary, run_build
from prefmill.recipe import Recipe, load_recipe
from prefmill.storage import Store
from prefmill.tasks.evaluation.extract import extract_final_number, numbers_equal

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

ALL_TABLES = ["prompts_rejected", "prompts", "candidates", "judgments", "pairs", "points", "lists"]


def _served() -> int:
    """Model requests served by every engine loaded in this process."""
    return sum(getattr(e, "requests_served", 0) for e in loaded_engines().values())


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, Store, BuildSummary]:
    folder = tmp_path_factory.mktemp("quickstart")
    assert run(["init", "quickstart", "--dir", str(folder)]) == 0
    recipe = load_recipe(folder / "quickstart.yaml")
    root = str(folder / "data")
    summary = run_build(recipe, root)
    return recipe, Store(root), summary


def _read(store: Store, summary: BuildSummary, table: str) -> list[dict]:
    return store.read_arrow(store.manifest("quickstart", table, summary.version(table))).to_pylist()


def test_first_build_builds_every_table(quickstart: tuple[Recipe, Store, BuildSummary]) -> None:
    _, _, summary = quickstart
    assert [t.table for t in summary.tables] == ALL_TABLES
    assert not any(t.cached for t in summary.tables)
    assert summary.tokens > 0


def test_prompts_and_candidates(quickstart: tuple[Recipe, Store, BuildSummary]) -> None:
    recipe, store, summary = quickstart
    prompts = _read(store, summary, "prompts")
    assert len(prompts) == 24 and len({p["prompt_id"] for p in prompts}) == 24
    assert sum(p["reference"] is not None for p in prompts) == 12
    assert _read(store, summary, "prompts_rejected") == []

    candidates = _read(store, summary, "candidates")
    assert len(candidates) == 24 * 4
    by_prompt: dict[str, list[dict]] = {}
    for c in candidates:
        by_prompt.setdefault(c["prompt_id"], []).append(c)
    assert set(by_prompt) == {p["prompt_id"] for p in prompts}
    for rows in by_prompt.values():
        assert sorted(r["sample_index"] for r in rows) == [0, 1, 2, 3]
        temps = {r["sample_index"]: json.loads(r["sampling"])["temperature"] for r in rows}
        assert temps == {0: 0.7, 1: 1.0, 2: 0.7, 3: 1.0}  # the recipe's temperature ladder
    for c in candidates:
        assert c["error"] is None and c["response"]
        assert c["generator"] == "transformers:smollm2" and c["origin"] == "online"
        assert 1 <= c["n_tokens"] <= recipe.synthesis.max_new_tokens
        assert c["finish_reason"] in ("stop", "length") and c["logprob"] < 0
        assert (c["finish_reason"] == "length") == (c["n_tokens"] == recipe.synthesis.max_new_tokens)
    manifest = store.manifest("quickstart", "candidates", summary.version("candidates"))
    assert manifest.totals["tokens"] == sum(c["n_tokens"] for c in candidates)
    assert len(manifest.files) == 3  # 24 prompts in shards of 8


def test_judgments_follow_the_verifier(quickstart: tuple[Recipe, Store, BuildSummary]) -> None:
    _, store, summary = quickstart
    reference = {p["prompt_id"]: p["reference"] for p in _read(store, summary, "prompts")}
    responses = {c["candidate_id"]: c["response"] for c in _read(store, summary, "candidates")}
    judgments = _read(store, summary, "judgments")
    assert len(judgments) == 96 and len({j["candidate_id"] for j in judgments}) == 96
    for j in judgments:
        ref = reference[j["prompt_id"]]
        if ref is not None:
            assert j["judge"] == "arithmetic-verifier" and j["kind"] == "verifier"
            answer = extract_final_number(responses[j["candidate_id"]])
            assert j["score"] == (1.0 if answer is not None and numbers_equal(answer, ref) else 0.0)
        else:
            assert j["judge"] == "heuristic" and 0.0 <= j["score"] <= 1.0


def test_pairs_points_lists(quickstart: tuple[Recipe, Store, BuildSummary]) -> None:
    recipe, store, summary = quickstart
    scores = {j["candidate_id"]: j["score"] for j in _read(store, summary, "judgments")}
    responses = {c["candidate_id"]: c["response"] for c in _read(store, summary, "candidates")}
    pairs = _read(store, summary, "pairs")
    assert pairs, "the quickstart should yield at least one pair"
    for p in pairs:
        # candidate_scores rounds to 12 decimals (float noise never separates equal scores)
        assert p["chosen_score"] == pytest.approx(scores[p["chosen_id"]], abs=1e-11)
        assert p["rejected_score"] == pytest.approx(scores[p["rejected_id"]], abs=1e-11)
        assert p["margin"] == pytest.approx(p["chosen_score"] - p["rejected_score"])
        assert p["margin"] >= recipe.instantiation.min_margin and p["margin"] > 0
        assert p["chosen"] == responses[p["chosen_id"]] and p["rejected"] == responses[p["rejected_id"]]
    assert len({p["prompt_id"] for p in pairs}) == len(pairs)  # best-vs-worst: one per prompt

    points = _read(store, summary, "points")
    assert len(points) == 96
    assert all(p["label"] == (p["reward"] >= recipe.instantiation.label_threshold) for p in points)

    lists = _read(store, summary, "lists")
    assert len(lists) == 24
    for row in lists:
        assert len(row["candidate_ids"]) == 4 and row["scores"] == sorted(row["scores"], reverse=True)
        assert sum(row["advantages"]) == pytest.approx(0.0, abs=1e-6)


def test_lineage_and_ref(quickstart: tuple[Recipe, Store, BuildSummary]) -> None:
    _, store, summary = quickstart
    ref = store.read_ref("quickstart")
    assert ref.tables == {t.table: t.version for t in summary.tables}
    pairs = store.manifest("quickstart", "pairs", summary.version("pairs"))
    assert {(p.table, p.version) for p in pairs.parents} == {
        ("prompts", summary.version("prompts")),
        ("candidates", summary.version("candidates")),
        ("judgments", summary.version("judgments")),
    }
    assert {a.table for a in store.ancestors(pairs)} == {"prompts", "candidates", "judgments"}
    assert pairs.flow_run_id and pairs.config["params"] == {
        "aggregation": "mean",
        "min_margin": 0.05,
        "tau": 0.25,
        "strategies": ["best_vs_worst"],
        "seed": 0,
        "diversity_quantile": 0.5,
        "weight_clip": 5.0,
        "min_implicit_margin": None,
        "min_spread": None,
        "max_spread": None,
        "drop_swap_inconsistent": True,
        "min_entropy": None,
        "max_entropy": None,
    }
    assert pairs.stats["rows_before_selection"] == pairs.rows + sum(pairs.stats["removed"].values())


def test_rerun_is_cached_and_calls_no_model(quickstart: tuple[Recipe, Store, BuildSummary]) -> None:
    recipe, store, first = quickstart
    served = _served()
    again = run_build(recipe, store.root)
    assert all(t.cached for t in again.tables)
    assert [(t.table, t.version) for t in again.tables] == [(t.table, t.version) for t in first.tables]
    assert _served() == served
    assert again.tokens == 0


def test_changing_a_parameter_rebuilds_only_what_uses_it(
    quickstart: tuple[Recipe, Store, BuildSummary],
) -> None:
    recipe, store, first = quickstart
    served = _served()
    changed = recipe.model_copy(
        update={"instantiation": recipe.instantiation.model_copy(update={"label_threshold": 0.9})}
    )
    summary = run_build(changed, store.root, ref="strict")
    status = {t.table: t.cached for t in summary.tables}
    assert status == {t: t != "points" for t in ALL_TABLES}
    assert _served() == served  # no model call
    points = store.read_arrow(store.manifest("quickstart", "points", summary.version("points")))
    assert points.column("label").to_pylist() == [r >= 0.9 for r in points.column("reward").to_pylist()]
    assert summary.version("points") != first.version("points")
    assert store.read_ref("quickstart", "latest").tables["points"] == first.version("points")


def test_stop_after_synthesis_builds_nothing_later(quickstart: tuple[Recipe, Store, BuildSummary]) -> None:
    recipe, store, first = quickstart
    summary = run_build(recipe, store.root, stop_after="synthesis", ref="gen-only")
    assert [t.table for t in summary.tables] == ["prompts_rejected", "prompts", "candidates"]
    assert store.read_ref("quickstart", "gen-only").tables["candidates"] == first.version("candidates")


def test_cli_inspects_the_real_build(
    quickstart: tuple[Recipe, Store, BuildSummary], capsys: pytest.CaptureFixture[str]
) -> None:
    _, store, summary = quickstart
    root = store.root
    assert run(["sql", "SELECT count(*) AS n FROM candidates", "--root", root, "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 96}]
    assert run(["lineage", "pairs", "--root", root, "--ref", "latest", "-f", "json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["version"] == summary.version("pairs")
    assert {p["table"] for p in tree["parents"]} == {"prompts", "candidates", "judgments"}
    assert (
        run(
            ["show", "judgments", "--root", root, "--where", "judge = 'heuristic'", "-n", "100", "-f", "json"]
        )
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == 48


def test_the_tables_read_as_arrow_polars_and_duckdb(tiny_build: TinyBuild) -> None:
    store, summary = Store(tiny_build.root), tiny_build.summary  # the session's shared build: read only
    m = store.resolve_version(tiny_build.dataset, "lists")
    assert m.version == summary.version("lists")
    arrow = store.read_arrow(m)
    assert isinstance(arrow, pa.Table) and store.read_polars(m).height == arrow.num_rows
    from prefmill.storage.duck import session

    con = session(store, tiny_build.dataset)
    assert con.sql("SELECT count(*) FROM lists").fetchall() == [(arrow.num_rows,)]


def test_diverse_pairs_and_recipe_exports(
    quickstart: tuple[Recipe, Store, BuildSummary], tmp_path: pytest.TempPathFactory
) -> None:
    """DivPO pairs with the packaged embedding model, and the recipe's export section, in a real build:
    only pairs rebuild, no generation model call."""
    import datasets

    from prefmill.recipe import ExportConfig

    recipe, store, _ = quickstart
    served = _served()
    changed = recipe.model_copy(
        update={
            "instantiation": recipe.instantiation.model_copy(
                update={"pair_strategies": ["best_vs_worst", "diverse"]}
            ),
            "export": [
                ExportConfig(
                    format="trl-preference", out=str(tmp_path / "dpo"), where="strategy = 'diverse'"
                ),
                ExportConfig(format="trl-unpaired", out=str(tmp_path / "kto"), to=["jsonl"]),
            ],
        }
    )
    summary = run_build(changed, store.root, ref="diverse")
    assert {t.table: t.cached for t in summary.tables} == {t: t != "pairs" for t in ALL_TABLES}
    assert _served() == served
    pairs = store.manifest("quickstart", "pairs", summary.version("pairs"))
    assert pairs.config["embedding_model"].startswith("all-MiniLM-L6-v2")
    diverse = pairs.stats["strategies"].get("diverse", 0)
    assert diverse > 0 and pairs.stats["strategies"]["best_vs_worst"] > 0
    assert [e.rows for e in summary.exports] == [diverse, first_points_rows(store, summary)]
    dpo = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "dpo" / "data" / "*.parquet"), split="train"
    )
    assert dpo.column_names == ["prompt", "chosen", "rejected"] and len(dpo) == diverse
    kto = datasets.load_dataset("json", data_files=str(tmp_path / "kto" / "train.jsonl"), split="train")
    assert kto.column_names == ["prompt", "completion", "label"]
    assert "## Judges" in (tmp_path / "kto" / "README.md").read_text()


def first_points_rows(store: Store, summary: BuildSummary) -> int:
    return store.manifest("quickstart", "points", summary.version("points")).rows
