"""The versioned table store (DESIGN §3): versions, manifests, atomic publish, refs, lineage, gc, names,
filesystems."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal
from tables import TABLES, build, inferred

from prefmill.errors import NotFoundError, SchemaError, StorageError
from prefmill.storage import (
    DEFAULT_REF,
    SCHEMAS,
    Manifest,
    Parent,
    Store,
    VersionWriter,
    check_name,
    conform,
    version_id,
)
from prefmill.storage import store as store_module
from prefmill.storage.manifest import MANIFEST_NAME

DS = "ds"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def _write(
    store: Store,
    table: str,
    data: pa.Table | None = None,
    *,
    config: dict[str, Any] | None = None,
    parents: list[Parent] | None = None,
    shard_rows: int | None = None,
    dataset: str = DS,
) -> Manifest:
    return store.write_version(
        dataset,
        table,
        build(table) if data is None else data,
        stage=f"make_{table}",
        code_version="1",
        config=config if config is not None else {"table": table},
        parents=parents or [],
        shard_rows=shard_rows,
    )


def test_ids_are_written_without_dictionary(store: Store) -> None:
    # ids (columns ending in _id) are plain-encoded, every other leaf (nested ones too) dictionary-encoded
    m = _write(store, "lists", inferred("lists", 7))
    meta = pq.read_metadata(store.file_paths(m)[0])
    encodings = {
        meta.schema.column(i).path: "RLE_DICTIONARY" in meta.row_group(0).column(i).encodings
        for i in range(meta.num_columns)
    }
    assert encodings["list_id"] is False and encodings["prompt_id"] is False
    assert encodings["prompt"] is True and encodings["candidate_ids.list.element"] is True
    assert encodings["completions.list.element"] is True


def _tree(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its mtime, to prove nothing was written or touched."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


# -- round trip ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", TABLES)
def test_round_trip_each_table(store: Store, table: str) -> None:
    data = inferred(table, 7)  # inferred types: the store conforms them to the declared schema
    expected = conform(table, data)
    m = _write(store, table, data, shard_rows=3)

    assert [f.rows for f in m.files] == [3, 3, 1]
    assert m.table == table and m.dataset == DS and m.rows == 7
    got = store.read_arrow(m)
    assert got.schema.equals(SCHEMAS[table])
    assert got.equals(expected)
    assert_frame_equal(store.read_polars(m), pl.from_arrow(expected))
    assert store.read(DS, table, m.version).equals(expected)
    key = SCHEMAS[table].names[0]
    assert store.read_arrow(m, columns=[key]).column_names == [key]
    assert store.read_arrow(m, columns=[key]).column(key).equals(expected.column(key))


def test_round_trip_keeps_extra_columns(store: Store) -> None:
    data = build("points", 4).append_column("votes", pa.array([3, 1, 4, 1], pa.int64()))
    m = _write(store, "points", data, shard_rows=2)
    got = store.read_arrow(m)
    assert got.column_names[-1] == "votes"
    assert got.column("votes").to_pylist() == [3, 1, 4, 1]
    assert m.schema[-1] == {"name": "votes", "type": "int64"}


def test_read_rows_reads_a_slice_from_the_files_that_hold_it(store: Store, monkeypatch: Any) -> None:
    data = build("candidates", 7)
    m = _write(store, "candidates", data, shard_rows=3)  # files of 3, 3 and 1 rows
    whole = store.read_arrow(m)
    for start in range(9):
        for length in range(9):
            got = store.read_rows(m, start, length)
            assert got.equals(whole.slice(start, length)), (start, length)
    assert store.read_rows(m, 2, 3, columns=["candidate_id"]).column_names == ["candidate_id"]
    opened: list[str] = []
    original = store_module._read_slice
    monkeypatch.setattr(
        store_module, "_read_slice", lambda path, *a: opened.append(path) or original(path, *a)
    )
    assert store.read_rows(m, 3, 3).equals(whole.slice(3, 3))
    assert [Path(p).name for p in opened] == ["part-00001.parquet"]  # only the file that holds them


def test_read_rows_decodes_only_the_row_groups_that_hold_the_slice(store: Store, monkeypatch: Any) -> None:
    data = build("prompts", 10)
    m = store.write_version(DS, "prompts", data, stage="s", code_version="1", config={}, row_group_rows=3)
    assert [f.rows for f in m.files] == [10]
    path = store.file_paths(m)[0]
    assert [pq.ParquetFile(path).metadata.row_group(g).num_rows for g in range(4)] == [3, 3, 3, 1]
    whole = store.read_arrow(m)
    assert whole.equals(conform("prompts", data))
    for start in range(11):
        for length in range(11):
            assert store.read_rows(m, start, length).equals(whole.slice(start, length)), (start, length)
    read: list[list[int]] = []
    original = pq.ParquetFile.read_row_groups
    monkeypatch.setattr(
        pq.ParquetFile,
        "read_row_groups",
        lambda self, groups, **kw: read.append(groups) or original(self, groups, **kw),
    )
    assert store.read_rows(m, 4, 4, columns=["prompt_id"]).equals(whole.select(["prompt_id"]).slice(4, 4))
    assert read == [[1, 2]]  # rows 3-5 and 6-8: not the first row group, nor the last


def test_empty_table_round_trips(store: Store) -> None:
    m = _write(store, "candidates", build("candidates", 0))
    assert m.rows == 0 and [f.rows for f in m.files] == [0]
    got = store.read_arrow(m)
    assert got.num_rows == 0 and got.schema.equals(SCHEMAS["candidates"])


def test_write_version_rejects_invalid_data_and_publishes_nothing(store: Store) -> None:
    data = build("candidates").drop_columns(["origin"])
    with pytest.raises(SchemaError, match="missing column 'origin'"):
        _write(store, "candidates", data)
    assert store.versions(DS, "candidates") == []


# -- content-addressed versions -------------------------------------------------------------------------
def test_version_id_is_content_addressed() -> None:
    parents = [Parent("prompts", "aaaa"), Parent("candidates", "bbbb")]
    base = version_id("judgments", "evaluate", "1", {"judge": "x", "k": 2}, parents)
    assert len(base) == 16 and all(c in "0123456789abcdef" for c in base)
    # same inputs -> same id, whatever the order of config keys and parents
    assert version_id("judgments", "evaluate", "1", {"k": 2, "judge": "x"}, parents[::-1]) == base
    changed = [
        version_id("pairs", "evaluate", "1", {"judge": "x", "k": 2}, parents),
        version_id("judgments", "evaluate2", "1", {"judge": "x", "k": 2}, parents),
        version_id("judgments", "evaluate", "2", {"judge": "x", "k": 2}, parents),
        version_id("judgments", "evaluate", "1", {"judge": "x", "k": 3}, parents),
        version_id("judgments", "evaluate", "1", {"judge": "x", "k": 2}, parents[:1]),
        version_id(
            "judgments", "evaluate", "1", {"judge": "x", "k": 2}, [*parents[:1], Parent("candidates", "cccc")]
        ),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_write_version_ids_follow_inputs(store: Store) -> None:
    a = _write(store, "candidates", config={"k": 2})
    assert _write(store, "candidates", config={"k": 2}).version == a.version
    assert _write(store, "candidates", config={"k": 3}).version != a.version
    parent = _write(store, "prompts")
    child = _write(store, "candidates", config={"k": 2}, parents=[Parent("prompts", parent.version)])
    assert child.version != a.version
    assert a.version == version_id("candidates", "make_candidates", "1", {"k": 2}, [])


def test_write_version_of_existing_version_writes_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _write(store, "candidates", shard_rows=2)
    before = _tree(tmp_path / "store")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an existing version was written again")

    monkeypatch.setattr(VersionWriter, "write_shard", refuse)
    monkeypatch.setattr(VersionWriter, "publish", refuse)
    # different rows, same inputs: the version is what its inputs say, so the cached one comes back
    again = _write(store, "candidates", build("candidates", 2), shard_rows=2)
    assert again == first
    assert _tree(tmp_path / "store") == before
    assert store.read_arrow(again).equals(build("candidates"))


# -- atomic publish -------------------------------------------------------------------------------------
class SimulatedCrash(BaseException):
    """Stands for the process dying in the middle of writing a shard."""


def test_crash_between_shards_leaves_no_readable_version(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = build("candidates", 9)
    vid = version_id("candidates", "synthesize", "1", {}, [])
    writer = store.open_version(DS, "candidates", vid)
    writer.write_shard(0, data.slice(0, 3))

    real_write_table = pq.write_table

    def dying_write_table(table: pa.Table, where: str, filesystem: Any = None, **kwargs: Any) -> None:
        with filesystem.open_output_stream(where) as out:  # half a file under the temporary name
            out.write(b"PAR1 half a shard")
        raise SimulatedCrash

    monkeypatch.setattr(pq, "write_table", dying_write_table)
    with pytest.raises(SimulatedCrash):
        writer.write_shard(1, data.slice(3, 3))
    monkeypatch.setattr(pq, "write_table", real_write_table)

    vdir = tmp_path / "store" / DS / "candidates" / vid
    leftovers = sorted(p.name for p in vdir.iterdir())
    assert "part-00000.parquet" in leftovers
    assert any(n.startswith(".tmp-") and n.endswith("part-00001.parquet") for n in leftovers)
    assert MANIFEST_NAME not in leftovers

    # a fresh reader (another process after the crash) sees no version
    reader = Store(tmp_path / "store")
    assert reader.versions(DS, "candidates") == []
    assert reader.find_manifest(DS, "candidates", vid) is None
    with pytest.raises(NotFoundError, match="no published version"):
        reader.resolve_version(DS, "candidates", vid)
    with pytest.raises(NotFoundError):
        reader.manifest(DS, "candidates", vid)
    assert reader.incomplete_versions(DS, "candidates") == [vid]

    # the resumed run sees shard 0 done, the half-written temporary file is not a shard
    resumed = reader.open_version(DS, "candidates", vid)
    assert resumed.finished_shards() == [0]
    assert not resumed.published
    with pytest.raises(StorageError, match=r"shards \[1, 2\] are not written"):
        resumed.publish(stage="synthesize", code_version="1", config={}, expected_shards=3)
    assert reader.find_manifest(DS, "candidates", vid) is None

    for i in (1, 2):
        resumed.write_shard(i, data.slice(3 * i, 3))
    m = resumed.publish(stage="synthesize", code_version="1", config={}, expected_shards=3)
    assert [f.path for f in m.files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert all(not f.path.startswith(".") for f in m.files)
    assert reader.read_arrow(reader.resolve_version(DS, "candidates", vid)).equals(data)
    assert reader.incomplete_versions(DS, "candidates") == []
    assert [v.version for v in reader.versions(DS, "candidates")] == [vid]


def test_publish_without_shards_is_refused(store: Store) -> None:
    writer = store.open_version(DS, "points", "v0")
    with pytest.raises(StorageError, match="no shard was written"):
        writer.publish(stage="s", code_version="1", config={})


def test_normal_write_leaves_no_temporary_files(store: Store, tmp_path: Path) -> None:
    m = _write(store, "candidates", shard_rows=2)
    store.write_ref(DS, DEFAULT_REF, {"candidates": m.version})
    names = [p.name for p in (tmp_path / "store").rglob("*")]
    assert not [n for n in names if n.startswith(".tmp-")]
    vdir = tmp_path / "store" / DS / "candidates" / m.version
    assert sorted(p.name for p in vdir.iterdir()) == [
        MANIFEST_NAME,
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]


def test_published_version_is_never_overwritten(store: Store) -> None:
    data = build("candidates", 4)
    writer = store.open_version(DS, "candidates", "v1")
    writer.write_shard(0, data)
    first = writer.publish(stage="s", code_version="1", config={}, flow_run_id="run-1")
    with pytest.raises(StorageError, match="is published; nothing is overwritten"):
        writer.write_shard(0, build("candidates", 2))
    with pytest.raises(StorageError, match="is published"):
        store.open_version(DS, "candidates", "v1").write_shard(1, data)
    # a second publish (another writer of the same version) gets the first manifest back
    second = store.open_version(DS, "candidates", "v1").publish(
        stage="s", code_version="1", config={}, flow_run_id="run-2"
    )
    assert second == first and second.flow_run_id == "run-1"
    assert store.read_arrow(first).equals(data)


def test_losing_publisher_gets_winning_manifest(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both writers pass the 'already published?' check; the manifest move decides who wins."""
    data = build("points", 4)
    a = store.open_version(DS, "points", "v1")
    a.write_shard(0, data)
    b = store.open_version(DS, "points", "v1")
    won = a.publish(stage="s", code_version="1", config={}, flow_run_id="a")
    calls = iter([None])  # b's first check misses the manifest, as if it ran just before a's publish
    real = VersionWriter.manifest

    def late_manifest(self: VersionWriter) -> Manifest | None:
        return next(calls, "real") and real(self)  # type: ignore[return-value]

    monkeypatch.setattr(VersionWriter, "manifest", late_manifest)
    lost = b.publish(stage="s", code_version="1", config={}, flow_run_id="b")
    assert lost == won and lost.flow_run_id == "a"
    assert Manifest.from_json((Path(b.dir) / MANIFEST_NAME).read_text()) == won


# -- manifest content -------------------------------------------------------------------------------------
def test_manifest_records_files_totals_stats_parents_schema(store: Store, tmp_path: Path) -> None:
    prompts = _write(store, "prompts")
    data = build("candidates", 10, errors=3)
    data = data.set_column(data.column_names.index("cost_usd"), "cost_usd", pa.array([0.25] * 10))
    vid = version_id("candidates", "synthesize", "7", {"k": 4}, [Parent("prompts", prompts.version)])
    writer = store.open_version(DS, "candidates", vid)
    shard_stats: list[dict[str, Any]] = [{"calls": 2, "model": "tiny"}, {"calls": 3, "retries": 1}, {}]
    for i, stats in enumerate(shard_stats):
        writer.write_shard(i, data.slice(4 * i, 4), stats=stats)
    start = datetime.now(UTC)
    m = writer.publish(
        stage="synthesize",
        code_version="7",
        config={"k": 4},
        parents=[Parent("prompts", prompts.version)],
        flow_run_id="flow-123",
        expected_shards=3,
        extra_stats={"note": "unit"},
    )

    vdir = tmp_path / "store" / DS / "candidates" / vid
    assert [(f.path, f.rows) for f in m.files] == [
        ("part-00000.parquet", 4),
        ("part-00001.parquet", 4),
        ("part-00002.parquet", 2),
    ]
    assert [f.bytes for f in m.files] == [(vdir / f.path).stat().st_size for f in m.files]
    assert m.totals == {
        "rows": 10,
        "tokens": sum(n for n in data.column("n_tokens").to_pylist()),
        "prompt_tokens": 200,
        "cost_usd": 2.5,
        "errors": 3,
    }
    assert m.stats == {"calls": 5, "model": "tiny", "retries": 1, "note": "unit"}
    assert m.parents == [Parent("prompts", prompts.version)]
    assert [c["name"] for c in m.schema] == SCHEMAS["candidates"].names
    assert {"name": "sample_index", "type": "int32"} in m.schema
    assert (m.dataset, m.table, m.version, m.stage, m.code_version) == (
        DS,
        "candidates",
        vid,
        "synthesize",
        "7",
    )
    assert m.config == {"k": 4} and m.flow_run_id == "flow-123"
    created = datetime.fromisoformat(m.created_at)
    assert start - timedelta(seconds=1) <= created <= datetime.now(UTC) + timedelta(seconds=1)
    # the file on disk is the manifest, and it is plain JSON
    on_disk = json.loads((vdir / MANIFEST_NAME).read_text())
    assert on_disk["totals"]["errors"] == 3 and on_disk["parents"] == [
        {"table": "prompts", "version": prompts.version}
    ]
    assert Manifest.from_json((vdir / MANIFEST_NAME).read_text()) == m
    assert store.manifest(DS, "candidates", vid) == m


def test_manifest_counts_parse_errors_and_stats_of_write_version(store: Store) -> None:
    data = build("judgments", 8, parse_errors=2)
    m = store.write_version(
        DS, "judgments", data, stage="evaluate", code_version="1", config={}, shard_rows=3, stats={"calls": 8}
    )
    assert m.totals == {"rows": 8, "errors": 2}
    assert m.stats == {"calls": 8}
    assert [f.rows for f in m.files] == [3, 3, 2]


def test_manifest_json_ignores_unknown_keys() -> None:
    m = Manifest(DS, "points", "v", "s", "1", {}, [], [], [], {"rows": 0})
    data = json.loads(m.to_json())
    data["added_by_a_newer_prefmill"] = True
    assert Manifest.from_json(json.dumps(data)) == m


# -- refs and version resolution --------------------------------------------------------------------------
def test_refs_write_read_list(store: Store) -> None:
    p = _write(store, "prompts")
    c = _write(store, "candidates", parents=[Parent("prompts", p.version)])
    ref = store.write_ref(
        DS, DEFAULT_REF, {"prompts": p.version, "candidates": c.version}, info={"recipe": "q"}
    )
    assert ref.created_at
    assert store.read_ref(DS) == ref
    store.write_ref(DS, "baseline", {"prompts": p.version})
    assert list(store.refs(DS)) == ["baseline", "latest"]
    assert store.refs(DS)["baseline"].tables == {"prompts": p.version}
    # a ref is a pointer: writing it again moves it
    c2 = _write(store, "candidates", config={"k": 9})
    store.write_ref(DS, DEFAULT_REF, {"prompts": p.version, "candidates": c2.version})
    assert store.read_ref(DS).tables["candidates"] == c2.version
    assert store.resolve_version(DS, "candidates") == c2
    assert store.resolve_version(DS, "prompts", ref="baseline") == p


def test_ref_to_unpublished_version_is_refused(store: Store) -> None:
    p = _write(store, "prompts")
    store.open_version(DS, "candidates", "halfway").write_shard(0, build("candidates"))
    with pytest.raises(NotFoundError, match="no published version 'halfway'"):
        store.write_ref(DS, DEFAULT_REF, {"prompts": p.version, "candidates": "halfway"})
    with pytest.raises(NotFoundError):
        store.read_ref(DS)


def _two_ids_sharing_first_char() -> tuple[dict[str, int], dict[str, int]]:
    seen: dict[str, dict[str, int]] = {}
    for i in range(100):
        config = {"i": i}
        first = version_id("points", "make_points", "1", config, [])[0]
        if first in seen:
            return seen[first], config
        seen[first] = config
    raise AssertionError("unreachable: 17 ids always share a first hex digit")


def test_resolve_version_by_id_prefix_and_ref(store: Store) -> None:
    c1, c2 = _two_ids_sharing_first_char()
    a = _write(store, "points", config=c1)
    b = _write(store, "points", config=c2)
    assert store.resolve_version(DS, "points", a.version) == a
    n = next(i for i, (x, y) in enumerate(zip(a.version, b.version, strict=True)) if x != y)
    common = a.version[:n]
    assert common
    assert store.resolve_version(DS, "points", a.version[: len(common) + 1]) == a
    assert store.resolve_version(DS, "points", b.version[: len(common) + 1]) == b
    with pytest.raises(NotFoundError, match="ambiguous") as err:
        store.resolve_version(DS, "points", common)
    assert a.version in str(err.value) and b.version in str(err.value)
    with pytest.raises(NotFoundError, match="no published version 'zzzz'"):
        store.resolve_version(DS, "points", "zzzz")
    store.write_ref(DS, DEFAULT_REF, {"points": b.version})
    assert store.resolve_version(DS, "points") == b


def test_resolve_errors_list_what_exists(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"no dataset 'ds'.*datasets: none"):
        store.resolve_version(DS, "points")
    p = _write(store, "points")
    _write(store, "prompts")
    _write(store, "points", dataset="other")
    with pytest.raises(NotFoundError, match=r"no dataset 'nope'.*datasets: ds, other"):
        store.resolve_version("nope", "points")
    with pytest.raises(NotFoundError, match=r"no table 'pairs' in dataset 'ds' \(tables: points, prompts\)"):
        store.resolve_version(DS, "pairs")
    with pytest.raises(NotFoundError, match=r"no ref 'latest' in dataset 'ds' \(refs: none\)"):
        store.resolve_version(DS, "points")
    store.write_ref(DS, "mine", {"points": p.version})
    with pytest.raises(NotFoundError, match=r"no ref 'latest' in dataset 'ds' \(refs: mine\)"):
        store.read_ref(DS)
    with pytest.raises(
        NotFoundError, match=r"ref 'mine' of dataset 'ds' has no table 'prompts' \(it has: points\)"
    ):
        store.resolve_version(DS, "prompts", ref="mine")


def test_listing(store: Store) -> None:
    assert store.datasets() == []
    old = _write(store, "points", config={"v": 1})
    new = _write(store, "points", config={"v": 2})
    _write(store, "prompts", dataset="b")
    store.write_ref(DS, DEFAULT_REF, {"points": new.version})
    assert store.datasets() == ["b", DS]
    assert store.tables(DS) == ["points"]  # refs/ is not a table
    assert [m.version for m in store.versions(DS, "points")] == [old.version, new.version]  # oldest first


def test_default_root_comes_from_prefmill_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFMILL_HOME", str(tmp_path / "home"))
    store = Store()
    m = _write(store, "points")
    assert (tmp_path / "home" / DS / "points" / m.version / MANIFEST_NAME).is_file()


# -- lineage and garbage collection ---------------------------------------------------------------------
def _chain(store: Store) -> dict[str, Manifest]:
    """prompts -> candidates -> judgments -> pairs (pairs also reads candidates directly)."""
    p = _write(store, "prompts")
    c = _write(store, "candidates", parents=[Parent("prompts", p.version)])
    j = _write(store, "judgments", parents=[Parent("candidates", c.version)])
    pr = _write(store, "pairs", parents=[Parent("judgments", j.version), Parent("candidates", c.version)])
    return {"prompts": p, "candidates": c, "judgments": j, "pairs": pr}


def test_ancestors(store: Store) -> None:
    v = _chain(store)
    got = [(m.table, m.version) for m in store.ancestors(v["pairs"])]
    assert got == [
        ("judgments", v["judgments"].version),
        ("candidates", v["candidates"].version),
        ("prompts", v["prompts"].version),
    ]
    assert store.ancestors(v["prompts"]) == []
    assert [m.table for m in store.ancestors(v["judgments"])] == ["candidates", "prompts"]


def test_gc(store: Store, tmp_path: Path) -> None:
    v = _chain(store)
    store.write_ref(DS, DEFAULT_REF, {"pairs": v["pairs"].version})  # the rest is reachable as ancestors
    stale = [_write(store, "candidates", config={"old": i}) for i in range(2)]
    orphan = _write(store, "points")
    store.open_version(DS, "judgments", "crashed").write_shard(0, build("judgments"))
    stale_keys = sorted([("candidates", m.version) for m in stale] + [("points", orphan.version)])
    before = _tree(tmp_path / "store")

    dry = store.gc(DS)
    assert sorted(dry.unreferenced) == stale_keys
    assert dry.incomplete == [("judgments", "crashed")]
    assert dry.kept == 4 and not dry.applied and dry.bytes > 0
    assert _tree(tmp_path / "store") == before  # a dry run deletes nothing

    done = store.gc(DS, apply=True)
    assert sorted(done.unreferenced) == stale_keys and done.applied
    for table, version in stale_keys:
        assert store.find_manifest(DS, table, version) is None
        assert not (tmp_path / "store" / DS / table / version).exists()
    for m in v.values():
        assert store.read_arrow(store.manifest(DS, m.table, m.version)).num_rows == m.rows
    assert store.incomplete_versions(DS, "judgments") == ["crashed"]  # kept without incomplete=True

    store.gc(DS, apply=True, incomplete=True)
    assert store.incomplete_versions(DS, "judgments") == []
    assert not (tmp_path / "store" / DS / "judgments" / "crashed").exists()
    again = store.gc(DS)
    assert again.unreferenced == [] and again.incomplete == [] and again.kept == 4


def test_gc_keeps_versions_of_every_ref(store: Store) -> None:
    a = _write(store, "points", config={"v": 1})
    b = _write(store, "points", config={"v": 2})
    store.write_ref(DS, DEFAULT_REF, {"points": b.version})
    store.write_ref(DS, "baseline", {"points": a.version})
    report = store.gc(DS, apply=True)
    assert report.unreferenced == [] and report.kept == 2


# -- names ------------------------------------------------------------------------------------------------
BAD_NAMES = ["", "..", "../etc", "a/b", "/abs", ".hidden", "a..b", "a b", "x" * 129, "naïve"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_dataset_names_are_refused(store: Store, tmp_path: Path, name: str) -> None:
    with pytest.raises(StorageError, match=r"dataset name .* is not allowed.*no '/' and no '\.\.'"):
        _write(store, "points", dataset=name)
    with pytest.raises(StorageError, match="dataset name"):
        store.versions(name, "points")
    with pytest.raises(StorageError, match="dataset name"):
        store.read_ref(name)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("name", ["..", "a/b", ".tmp", ""])
def test_bad_table_version_and_ref_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(StorageError, match="table name"):
        store.open_version(DS, name, "v1")
    with pytest.raises(StorageError, match="version name"):
        store.open_version(DS, "points", name)
    p = _write(store, "points")
    with pytest.raises(StorageError, match="ref name"):
        store.write_ref(DS, name, {"points": p.version})
    assert list(store.refs(DS)) == []


def test_good_names_are_accepted() -> None:
    for name in ["ds", "my-data_1.v2", "A", "x" * 128]:
        assert check_name("dataset", name) == name


# -- filesystems ------------------------------------------------------------------------------------------
@pytest.fixture(params=["local", "file-uri", "memory"])
def any_root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "local":
        yield str(tmp_path / "plain")
    elif request.param == "file-uri":
        yield (tmp_path / "uri").as_uri()
    else:
        import fsspec

        name = f"prefmill-test-{uuid.uuid4().hex}"
        yield f"memory://{name}"
        fs = fsspec.filesystem("memory")
        if fs.exists(f"/{name}"):
            fs.rm(f"/{name}", recursive=True)


def test_filesystems_round_trip(any_root: str, tmp_path: Path) -> None:
    store = Store(any_root)
    assert store.root == any_root
    data = build("candidates", 7, errors=1)
    m = _write(store, "candidates", data, shard_rows=3)
    reader = Store(any_root)  # a second client of the same root
    assert reader.read_arrow(reader.resolve_version(DS, "candidates", m.version[:6])).equals(data)
    assert_frame_equal(reader.read_polars(m), pl.from_arrow(data))
    reader.write_ref(DS, DEFAULT_REF, {"candidates": m.version})
    assert store.resolve_version(DS, "candidates") == m
    assert list(store.refs(DS)) == [DEFAULT_REF]
    assert store.datasets() == [DS] and store.tables(DS) == ["candidates"]
    assert _write(store, "candidates", data, shard_rows=3) == m  # cached

    w = store.open_version(DS, "candidates", "partial")
    w.write_shard(0, data)
    assert store.incomplete_versions(DS, "candidates") == ["partial"]
    assert store.gc(DS, apply=True, incomplete=True).incomplete == [("candidates", "partial")]
    assert store.incomplete_versions(DS, "candidates") == []
    with pytest.raises(StorageError, match="is published"):
        store.open_version(DS, "candidates", m.version).write_shard(0, data)

    if any_root.startswith("memory://"):
        import fsspec

        fs = fsspec.filesystem("memory")
        assert not store.loc.is_local
        assert fs.exists(f"{store.loc.base}/{DS}/candidates/{m.version}/{MANIFEST_NAME}")
        assert not list(tmp_path.iterdir())  # nothing landed on the local disk
    else:
        assert store.loc.is_local
        folder = "plain" if any_root.startswith("/") else "uri"
        assert (tmp_path / folder / DS / "candidates" / m.version / MANIFEST_NAME).is_file()


def test_unknown_uri_scheme_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="no filesystem handles this URI"):
        Store("nosuchscheme-xyz://bucket/path")


def test_store_module_uses_no_other_prefmill_part() -> None:
    # DESIGN §1: storage imports no other part of prefmill (only errors and ids)
    source = Path(store_module.__file__).parent
    for py in source.glob("*.py"):
        for line in py.read_text().splitlines():
            if line.startswith(("import prefmill", "from prefmill")):
                module = line.split()[1]
                assert module.split(".")[1] in {"errors", "ids", "storage"}, f"{py.name}: {line}"


def test_a_version_can_borrow_shards_of_a_parent_by_reference(store: Store) -> None:
    """A retry writes only the shards it changed; the others are the parent's files, not copies."""
    data = build("candidates", 6, errors=2)
    first = store.open_version(DS, "candidates", "v1")
    first.write_shard(0, data.slice(0, 3))
    first.write_shard(1, data.slice(3, 3))
    v1 = first.publish(stage="synthesis", code_version="1", config={}, expected_shards=2)
    assert v1.totals["errors"] == 2

    fixed = build("candidates", 6).slice(0, 3)  # shard 0 again, without the failed rows
    second = store.open_version(DS, "candidates", "v2")
    second.write_shard(0, fixed)
    with pytest.raises(StorageError, match="borrowed versions \\['v1'\\] are not parents"):
        second.publish(stage="synthesis", code_version="1", config={}, expected_shards=2, borrowed={1: "v1"})
    v2 = second.publish(
        stage="synthesis",
        code_version="1",
        config={},
        parents=[Parent("candidates", "v1")],
        expected_shards=2,
        borrowed={1: "v1"},
    )
    assert [(f.path, f.version) for f in v2.files] == [
        ("part-00000.parquet", None),
        ("part-00001.parquet", "v1"),
    ]
    assert store.file_paths(v2)[1] == store.file_paths(v1)[1]
    assert not Path(store.version_path(DS, "candidates", "v2"), "part-00001.parquet").exists()
    assert v2.totals["errors"] == 0 and v2.rows == 6
    assert store.read_arrow(v2).equals(pa.concat_tables([fixed, data.slice(3, 3)]))

    store.write_ref(DS, "latest", {"candidates": "v2"})
    report = store.gc(DS, apply=True)
    assert report.unreferenced == []  # v1 is an ancestor of v2: its borrowed file stays
    assert store.read_arrow(store.manifest(DS, "candidates", "v2")).num_rows == 6


def test_prompts_row_groups_hold_whole_shards() -> None:
    from prefmill.flows.plans.prompts import MIN_ROW_GROUP, row_groups

    for shard in (1, 7, 64, 100, 8192, 10_000, 1_000_000):
        rows = row_groups(shard)
        assert rows % shard == 0 and rows >= MIN_ROW_GROUP and rows - shard < MIN_ROW_GROUP
