"""The store on object storage: a real S3-compatible server on loopback (moto), reached through s3fs
like MinIO or AWS would be. No rename on S3: shards and manifests are single conditional PUTs, a
version stays invisible until its manifest is in, and the first publisher wins."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tables import build

from prefmill.errors import NotFoundError, StorageError
from prefmill.storage import DEFAULT_REF, Parent, Store
from prefmill.storage.duck import session
from prefmill.storage.manifest import MANIFEST_NAME
from s3server import S3Server, s3_server  # noqa: F401  (fixture)

DS = "ds"


@pytest.fixture
def root(s3_server: S3Server) -> str:  # noqa: F811
    return f"s3://{s3_server.new_bucket()}/team/prefmill"


def _objects(root: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    return sorted(fs.find(root.removeprefix("s3://")))


def test_s3_root_goes_through_fsspec_with_env_credentials(root: str) -> None:
    store = Store(root)
    assert not store.loc.is_local and store.loc.fsspec_fs is not None
    assert type(store.loc.fsspec_fs).__name__ == "S3FileSystem"
    assert store.root == root and store.loc.base.endswith("/team/prefmill")
    assert store.datasets() == []


def test_round_trip_refs_and_sql_on_s3(root: str) -> None:
    store = Store(root)
    data = build("candidates", 7, errors=1)
    m = store.write_version(
        DS, "candidates", data, stage="s", code_version="1", config={"a": 1}, shard_rows=3
    )
    assert [f.rows for f in m.files] == [3, 3, 1] and m.totals["errors"] == 1
    reader = Store(root)  # a second client (another process would see the same)
    assert reader.read_arrow(reader.resolve_version(DS, "candidates", m.version[:6])).equals(data)
    reader.write_ref(DS, DEFAULT_REF, {"candidates": m.version})
    assert store.datasets() == [DS] and store.tables(DS) == ["candidates"]
    assert list(store.refs(DS)) == [DEFAULT_REF]
    con = session(store, DS)
    assert con.execute("SELECT count(*) FROM candidates WHERE error IS NULL").fetchall() == [(6,)]
    keys = _objects(root)
    assert not [k for k in keys if "/.tmp-" in k]  # no temporary objects: nothing to rename on S3
    assert sum(k.endswith(".parquet") for k in keys) == 3
    assert any(k.endswith(f"{m.version}/{MANIFEST_NAME}") for k in keys)


def test_version_without_manifest_is_invisible_until_published(root: str) -> None:
    store, other = Store(root), Store(root)
    data = build("judgments", 4)
    w = store.open_version(DS, "judgments", "v1")
    w.write_shard(0, data.slice(0, 2))
    # another client lists the shard (no stale listing cache) but cannot read the version
    assert other.open_version(DS, "judgments", "v1").finished_shards() == [0]
    assert other.incomplete_versions(DS, "judgments") == ["v1"]
    assert other.find_manifest(DS, "judgments", "v1") is None
    with pytest.raises(NotFoundError):
        other.resolve_version(DS, "judgments", "v1")
    with pytest.raises(StorageError, match=r"shards \[1\] are not written"):
        w.publish(stage="s", code_version="1", config={}, expected_shards=2)
    assert other.find_manifest(DS, "judgments", "v1") is None
    other.open_version(DS, "judgments", "v1").write_shard(1, data.slice(2, 2))  # e.g. a worker
    m = w.publish(stage="s", code_version="1", config={}, expected_shards=2)
    assert other.read_arrow(other.manifest(DS, "judgments", "v1")).equals(data) and m.rows == 4


def test_first_writer_wins_for_shards_and_manifests(root: str) -> None:
    a, b = Store(root), Store(root)
    data = build("candidates", 4)
    wa, wb = a.open_version(DS, "candidates", "v"), b.open_version(DS, "candidates", "v")
    wa.write_shard(0, data.slice(0, 2))
    wb.write_shard(0, data.slice(2, 2))  # a racing duplicate of shard 0 never replaces the first
    part = pq.read_table(wa.shard_path(0), filesystem=a.fs)
    assert part.equals(data.slice(0, 2))
    first = wa.publish(stage="s", code_version="1", config={}, flow_run_id="run-a")
    # b did not see a's manifest when it decided to publish (its first look finds nothing): S3's
    # conditional PUT refuses the second manifest, and b gets the winning one back
    real = b.find_manifest
    looks: list[int] = []

    def first_look_misses(*args: str):  # type: ignore[no-untyped-def]
        looks.append(1)
        return None if len(looks) == 1 else real(*args)

    b.find_manifest = first_look_misses  # type: ignore[method-assign]
    second = wb.publish(stage="s", code_version="1", config={}, flow_run_id="run-b")
    b.find_manifest = real  # type: ignore[method-assign]
    assert len(looks) == 2 and second.flow_run_id == "run-a" and second.created_at == first.created_at
    assert b.manifest(DS, "candidates", "v").flow_run_id == "run-a" == first.flow_run_id
    with pytest.raises(StorageError, match="is published"):
        wb.write_shard(1, data)


def test_borrowed_shards_and_gc_on_s3(root: str) -> None:
    store = Store(root)
    data = build("candidates", 6, errors=2)
    first = store.open_version(DS, "candidates", "v1")
    first.write_shard(0, data.slice(0, 3))
    first.write_shard(1, data.slice(3, 3))
    v1 = first.publish(stage="s", code_version="1", config={}, expected_shards=2)
    fixed = build("candidates", 6).slice(0, 3)
    second = store.open_version(DS, "candidates", "v2")
    second.write_shard(0, fixed)
    v2 = second.publish(
        stage="s",
        code_version="1",
        config={},
        parents=[Parent("candidates", "v1")],
        expected_shards=2,
        borrowed={1: "v1"},
    )
    assert store.file_paths(v2)[1] == store.file_paths(v1)[1]
    assert store.read_arrow(v2).equals(pa.concat_tables([fixed, data.slice(3, 3)]))
    store.open_version(DS, "candidates", "crashed").write_shard(0, fixed)
    store.write_ref(DS, DEFAULT_REF, {"candidates": "v2"})
    report = store.gc(DS, apply=True, incomplete=True)
    assert report.unreferenced == [] and report.incomplete == [("candidates", "crashed")]
    assert not [k for k in _objects(root) if "/crashed/" in k]
    assert Store(root).read_arrow(store.manifest(DS, "candidates", "v2")).num_rows == 6


def test_s3_without_bucket_or_credentials_is_a_clear_error(s3_server: S3Server) -> None:  # noqa: F811
    store = Store("s3://prefmill-no-such-bucket/x")
    with pytest.raises(NotFoundError, match="no dataset 'ds'"):
        store.resolve_version(DS, "candidates")
