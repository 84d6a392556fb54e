# SPDX-License-Identifier: MIT
"""The whole Python API, in embedded and in server mode, with its errors."""

import asyncio
import gc

import numpy as np
import pytest

import sutra
from conftest import DIM


def vec(*head):
    v = np.zeros(DIM, dtype=np.float32)
    v[:len(head)] = head
    return v


# ---- ids ---------------------------------------------------------------------

def test_ids_canonical_and_padded():
    assert sutra.normalize_id("AB") == "0" * 30 + "ab"
    assert sutra.normalize_id("f" * 32) == "f" * 32
    assert sutra.normalize_id(bytes(range(16))) == "000102030405060708090a0b0c0d0e0f"
    for bad in ["", "x", "0" * 33, "12 4"]:
        with pytest.raises(sutra.InvalidArgument):
            sutra.normalize_id(bad)
    with pytest.raises(sutra.InvalidArgument):
        sutra.normalize_id(b"short")
    with pytest.raises(TypeError):
        sutra.normalize_id(42)


def test_concept_id_is_sha256_prefix():
    import hashlib
    assert sutra.concept_id("héllo") == hashlib.sha256("héllo".encode()).hexdigest()[:32]
    assert sutra.concept_id("a") != sutra.concept_id("b")
    assert len(sutra.concept_id("")) == 32


def test_exception_hierarchy():
    assert issubclass(sutra.NotFound, sutra.Error) and issubclass(sutra.NotFound, LookupError)
    assert issubclass(sutra.DimensionError, ValueError)
    assert issubclass(sutra.Unavailable, ConnectionError)
    for cls in (sutra.InvalidArgument, sutra.StoreLocked, sutra.Corrupt, sutra.TooBig,
                sutra.VersionError, sutra.ProtocolError, sutra.Timeout, sutra.Unsupported):
        assert issubclass(cls, sutra.Error)


# ---- learn and read ----------------------------------------------------------

def test_learn_query_roundtrip(store):
    a = sutra.concept_id("alpha")
    e = store.learn_concept(a, "alpha", vec(1, 2, 3), strength=0.5, confidence=0.25,
                            metadata=b'{"k": 1}')
    assert isinstance(e, int) and e >= 1
    c = store.query_concept(a)
    assert c["id"] == a and c["content"] == "alpha"
    assert c["strength"] == 0.5 and c["confidence"] == 0.25
    assert c["metadata"] == b'{"k": 1}'
    assert c["created_us"] > 0 and c["updated_us"] >= c["created_us"]
    assert c["embedding"].dtype == np.float32
    assert np.array_equal(c["embedding"], vec(1, 2, 3))
    # Outside a snapshot the embedding is a copy, writable and ours.
    assert c["embedding"].flags.writeable
    assert store.contains(a) and a in store
    assert not store.contains("1234")
    assert store.query_concept("1234") is None
    # Short and upper-case ids name the same concept.
    store.learn_concept("AB", "short id")
    assert store.query_concept("ab")["id"] == "0" * 30 + "ab"
    assert store.query_concept(bytes.fromhex("0" * 30 + "ab"))["content"] == "short id"
    # No embedding.
    assert store.query_concept("ab")["embedding"] is None


def test_update_keeps_edges_and_creation(store):
    store.learn_concept("1", "one")
    store.learn_concept("2", "two")
    store.learn_association("1", "2")
    before = store.query_concept("1")
    store.learn_concept("1", "one again", vec(1))
    after = store.query_concept("1")
    assert after["content"] == "one again"
    assert after["created_us"] == before["created_us"]
    assert store.get_neighbors("1") == ["0" * 31 + "2"]


def test_embedding_layouts(store):
    base = np.arange(DIM * 2, dtype=np.float64)
    layouts = {
        "strided": base[::2],                                    # non-contiguous
        "fortran_column": np.asfortranarray(base.reshape(DIM, 2))[:, 0],
        "list": [float(x) for x in range(DIM)],
        "tuple_int": tuple(range(DIM)),
        "float32": np.arange(DIM, dtype=np.float32),
        "reversed": np.arange(DIM, dtype=np.float32)[::-1],
    }
    for i, (name, emb) in enumerate(layouts.items()):
        cid = f"{i + 100:x}"
        store.learn_concept(cid, name, emb)
        got = store.query_concept(cid)["embedding"]
        assert np.array_equal(got, np.asarray(emb, dtype=np.float32)), name


def test_embedding_errors(store):
    with pytest.raises(sutra.DimensionError):
        store.learn_concept("1", "x", np.zeros(DIM + 1, dtype=np.float32))
    with pytest.raises(sutra.DimensionError):
        store.learn_concept("1", "x", np.zeros((1, DIM), dtype=np.float32))
    with pytest.raises(sutra.DimensionError):
        store.learn_concept("1", "x", [])
    with pytest.raises(sutra.InvalidArgument):
        store.learn_concept("1", "x", ["a"] * DIM)
    with pytest.raises(sutra.InvalidArgument, match="all zeros"):
        store.learn_concept("1", "x", np.zeros(DIM, dtype=np.float32))
    bad = vec(1)
    bad[3] = np.nan
    with pytest.raises(sutra.InvalidArgument) as ei:
        store.learn_concept("1", "x", bad)
    assert ei.value.code == -1005 and ei.value.name == "SUTRA_EVALUE"
    assert not store.contains("1")


def test_argument_errors(store):
    with pytest.raises(sutra.InvalidArgument):
        store.learn_concept("1", "")
    with pytest.raises(TypeError):
        store.learn_concept("1", b"bytes")
    with pytest.raises(sutra.InvalidArgument):
        store.learn_concept("zz", "bad id")
    with pytest.raises(sutra.InvalidArgument):
        store.learn_concept("1", "x", strength=float("inf"))
    store.learn_concept("1", "one")
    with pytest.raises(sutra.InvalidArgument):
        store.learn_association("1", "1", 256)
    with pytest.raises(sutra.InvalidArgument):
        store.get_neighbors("1", direction="sideways")
    with pytest.raises(sutra.InvalidArgument):
        store.find_path("1", "1", max_depth=0)
    with pytest.raises(sutra.InvalidArgument):
        store.find_path("1", "1", max_depth=sutra.MAX_PATH_DEPTH + 1)
    with pytest.raises(sutra.InvalidArgument):
        store.find_paths("1", "1", k=0)
    with pytest.raises(sutra.InvalidArgument):
        store.wait_for_epoch(1, timeout=-1)


def test_too_big(store):
    # The coordinator's default content limit is 1 MiB.
    with pytest.raises(sutra.TooBig) as ei:
        store.learn_concept("1", "x" * (2 << 20))
    assert "SUTRA_ETOOBIG" in str(ei.value)
    assert not store.contains("1")


def test_associations_neighbours_and_paths(store):
    ids = [f"{i:x}" for i in range(1, 7)]
    for i in ids:
        store.learn_concept(i, f"concept {i}")
    norm = {i: sutra.normalize_id(i) for i in ids}
    store.learn_association("1", "2", 0, 0.9)
    store.learn_association("2", "3", 1, 0.8)
    store.learn_association("3", "4", 0, 0.7)
    store.learn_association("1", "5", 2, 0.6)
    store.learn_association("5", "4", 2, 0.5)
    store.learn_association("6", "1", 3, 0.4)
    # Both directions by default, ordered by confidence.
    assert store.get_neighbors("1") == [norm["2"], norm["5"], norm["6"]]
    assert store.get_neighbors("1", direction="out") == [norm["2"], norm["5"]]
    assert store.get_neighbors("1", direction="in") == [norm["6"]]
    assert store.get_neighbors("1", assoc_type=2) == [norm["5"]]
    assert store.get_neighbors("1", limit=1) == [norm["2"]]
    assert store.get_neighbors("1", limit=0) == []
    # The old store returned [] for an unknown concept; neighbors() raises.
    assert store.get_neighbors("abc") == []
    with pytest.raises(sutra.NotFound):
        store.neighbors("abc")
    rich = store.neighbors("1")
    assert rich[0]["id"] == norm["2"] and rich[0]["direction"] == "out"
    assert rich[0]["assoc_type"] == 0 and abs(rich[0]["confidence"] - 0.9) < 1e-6
    assert rich[2] == {**rich[2], "id": norm["6"], "direction": "in", "assoc_type": 3}
    assert rich[0]["weight"] == 1.0 and rich[0]["created_us"] > 0
    # Paths.
    assert store.find_path("1", "4") in ([norm["1"], norm["2"], norm["3"], norm["4"]],
                                         [norm["1"], norm["5"], norm["4"]])
    assert store.find_path("1", "4") == [norm["1"], norm["5"], norm["4"]]
    assert store.find_path("1", "4", assoc_type=0) is None
    assert store.find_path("1", "4", max_depth=1) is None
    assert store.find_path("1", "1") == [norm["1"]]
    assert store.find_path("1", "abc") is None
    assert store.find_path("4", "1", direction="out") is None
    paths = store.find_paths("1", "4", k=5)
    assert paths[0] == [norm["1"], norm["5"], norm["4"]]
    assert [norm["1"], norm["2"], norm["3"], norm["4"]] in paths
    assert store.find_paths("1", "abc") == []
    # Unknown endpoint on learn_association: an error, never a silent drop.
    with pytest.raises(sutra.NotFound) as ei:
        store.learn_association("1", "abc")
    assert "unknown" in str(ei.value) and "SUTRA_ENOTFOUND" in str(ei.value)


def test_deletes(store):
    for i in "123":
        store.learn_concept(i, i)
    store.learn_association("1", "2", 0)
    store.learn_association("1", "2", 1)
    store.learn_association("2", "3")
    e = store.delete_association("1", "2", 1)
    assert store.get_neighbors("1") == [sutra.normalize_id("2")]
    assert store.neighbors("1")[0]["assoc_type"] == 0
    with pytest.raises(sutra.NotFound):
        store.delete_association("1", "2", 1)
    e2 = store.delete_concept("2")
    assert e2 > e
    assert not store.contains("2") and store.query_concept("2") is None
    assert store.get_neighbors("1") == [] and store.get_neighbors("3") == []
    with pytest.raises(sutra.NotFound):
        store.delete_concept("2")
    st = store.stats()
    assert st["concept_count"] == 2 and st["association_count"] == 0


def test_batch_all_or_nothing(store):
    with store.batch() as b:
        b.learn_concept("1", "one", vec(1))
        b.learn_concept("2", "two")
        b.learn_association("1", "2", 4)
        assert len(b) == 3
    assert b.epoch == store.stats()["epoch"]
    assert store.get_neighbors("1", assoc_type=4) == [sutra.normalize_id("2")]
    # One bad operation: nothing of the batch is applied.
    before = store.stats()
    with pytest.raises(sutra.NotFound) as ei:
        with store.batch() as b:
            b.learn_concept("3", "three")
            b.learn_association("3", "abc")
    assert ei.value.index == 1
    assert not store.contains("3")
    assert store.stats()["concept_count"] == before["concept_count"]
    # An exception inside the block discards the batch.
    with pytest.raises(RuntimeError):
        with store.batch() as b:
            b.learn_concept("4", "four")
            raise RuntimeError("abandon")
    assert not store.contains("4")
    # Deletes in a batch, one epoch.
    with store.batch() as b:
        b.delete_association("1", "2", 4)
        b.delete_concept("2")
    assert not store.contains("2") and store.get_neighbors("1") == []
    # Errors of an operation's arguments are raised when it is added.
    with pytest.raises(sutra.DimensionError):
        store.batch().learn_concept("5", "five", vec(1)[:3])


def test_snapshot_isolation_and_zero_copy(store):
    store.learn_concept("1", "v1", vec(1))
    with store.snapshot() as snap:
        e0 = snap.epoch
        c = snap.query_concept("1")
        emb = c["embedding"]
        assert not emb.flags.writeable and not emb.flags.owndata
        with pytest.raises(ValueError):
            emb[0] = 5
        # The writer moves on; the snapshot keeps its epoch's view.
        store.learn_concept("1", "v2", vec(2))
        store.learn_concept("2", "new")
        assert snap.query_concept("1")["content"] == "v1"
        assert not snap.contains("2")
        assert snap.stats()["epoch"] == e0
        assert snap.get_neighbors("1") == [] and snap.find_path("1", "1") is not None
        assert sorted(snap.ids()) == [sutra.normalize_id("1")]
        assert [x["content"] for x in snap.concepts()] == ["v1"]
        copy = snap.query_concept_copy("1")["embedding"]
        assert copy.flags.writeable
        # Regression: a zero-copy array dropped inside the block must not
        # give the snapshot back while the block still uses it.
        for _ in range(3):
            assert snap.query_concept("1")["embedding"][0] == 1
        gc.collect()
        assert snap.query_concept("1")["content"] == "v1"
    assert snap.released
    with pytest.raises(sutra.InvalidArgument):
        snap.query_concept("1")
    # The array keeps its snapshot's mapping pinned after the with block.
    assert np.array_equal(emb, vec(1))
    del emb, c
    gc.collect()
    assert store.query_concept("1")["content"] == "v2"
    with store.snapshot(min_epoch=store.last_epoch) as s2:
        assert s2.epoch >= store.last_epoch
    # A snapshot of an epoch not reached yet.
    with pytest.raises(sutra.Error):
        store.snapshot(min_epoch=store.last_epoch + 1000)


def test_iteration_stats_flush(store):
    for i in range(1, 11):
        store.learn_concept(f"{i:x}", f"c{i}")
    assert len(store) == 10
    assert sorted(store) == sorted(sutra.normalize_id(f"{i:x}") for i in range(1, 11))
    assert sorted(c["content"] for c in store.iter_concepts()) == sorted(
        f"c{i}" for i in range(1, 11))
    st = store.stats()
    for k in ("epoch", "concept_count", "association_count", "vector_dimension",
              "published_end", "file_size", "tail_bytes", "segment_count"):
        assert k in st
    assert st["vector_dimension"] == DIM == store.vector_dimension
    assert store.flush() >= st["epoch"] - 1
    cs = store.coordinator_stats()
    assert cs["concept_count"] == 10 and cs["vector_dimension"] == DIM
    assert store.ping() >= st["epoch"]
    info = store.info()
    assert info["mode"] == store.mode and info["role"] in ("writer", "client")


def test_wait_for_epoch(store):
    e = store.learn_concept("1", "one")
    assert store.wait_for_epoch(e) is True
    assert store.wait_for_epoch(e, timeout=0) is True
    assert store.wait_for_epoch(e + 10**6, timeout=0.05) is False


def test_notices_iterator(store):
    def until(notices, epoch):
        while True:
            n = notices.next(timeout=10)
            assert n is not None, "no notice within 10 s"
            if n.epoch >= epoch:
                return n

    one, two = sutra.normalize_id("1"), sutra.normalize_id("2")
    with store.notices() as notices:
        # Only what is published after the subscription connects arrives.
        assert notices.wait_connected(10)
        n = until(notices, store.learn_concept("1", "one"))
        assert set(n.ids) == {one} and not n.heartbeat and not n.unresolved
        n = until(notices, store.learn_concept("2", "two"))
        assert set(n.ids) == {two}
        n = until(notices, store.learn_association("1", "2"))
        assert set(n.ids) == {one, two} and len(n.ordinals) == 2
        # A deleted concept this subscription has seen is still named.
        n = until(notices, store.delete_concept("2"))
        assert two in n.ids and n.durable_epoch >= 0
        # One learnt and deleted before the notice is read cannot be named
        # from the file any more: its ordinal is reported as unresolved.
        store.learn_concept("3", "three")
        n = until(notices, store.delete_concept("3"))
        assert len(n.unresolved) == 1 and sutra.normalize_id("3") not in n.ids
        assert isinstance(notices.fileno(), int)
        h = notices.next(timeout=10, heartbeats=True)
        assert h is not None


def test_notices_asyncio(store):
    async def main():
        notices = store.notices()
        assert notices.wait_connected(10)
        loop = asyncio.get_running_loop()
        e = await loop.run_in_executor(None, store.learn_concept, "7", "seven")
        async for n in notices:
            if n.epoch >= e:
                notices.close()
                return n

    n = asyncio.run(asyncio.wait_for(main(), 20))
    assert sutra.normalize_id("7") in n.ids


def test_search(store):
    store.learn_concept("1", "red apple", vec(1, 0))
    store.learn_concept("2", "green apple", vec(0, 1))
    store.learn_concept("3", "red car", vec(1, 0.1))
    hits = store.vector_search(vec(1, 0), k=2, ef_search=50)
    assert [h[0] for h in hits] == [sutra.normalize_id("1"), sutra.normalize_id("3")]
    assert abs(hits[0][1] - 1.0) < 1e-5
    assert [h[0] for h in store.vector_search(vec(1, 0), k=3, text="car")] == [
        sutra.normalize_id("3")]
    assert {h[0] for h in store.text_search("apple")} == {sutra.normalize_id("1"),
                                                           sutra.normalize_id("2")}
    assert [h[0] for h in store.text_search("red apple", mode="all")] == [
        sutra.normalize_id("1")]
    assert len(store.text_search("red apple", mode="any")) == 3
    with pytest.raises(sutra.DimensionError):
        store.vector_search(vec(1)[:3])
    with pytest.raises(sutra.InvalidArgument):
        store.vector_search(vec(1), k=0)
    with pytest.raises(sutra.InvalidArgument):
        store.text_search("apple", mode="xor")
    store.delete_concept("1")
    assert sutra.normalize_id("1") not in [h[0] for h in store.vector_search(vec(1, 0), k=3)]


def test_closed_store(store):
    store.learn_concept("1", "one")
    store.close()
    with pytest.raises(sutra.InvalidArgument):
        store.query_concept("1")
    with pytest.raises(sutra.InvalidArgument):
        store.learn_concept("2", "two")
    store.close()


# ---- modes -------------------------------------------------------------------

def test_embedded_second_object_writes_through_the_first(tmpdir_short):
    a = sutra.ConcurrentStorage(tmpdir_short, vector_dimension=DIM)
    a.learn_concept("1", "from a")
    assert a.info()["role"] == "writer"
    b = sutra.ConcurrentStorage(tmpdir_short, vector_dimension=DIM)
    e = b.learn_concept("2", "from b")
    assert b.info()["role"] == "client"
    assert a.wait_for_epoch(e, 10) and a.query_concept("2")["content"] == "from b"
    assert b.query_concept("1")["content"] == "from a"
    b.close()
    a.close()


def test_embedded_reopen_recovers(tmpdir_short):
    with sutra.ConcurrentStorage(tmpdir_short, vector_dimension=DIM) as s:
        s.learn_concept("1", "durable", vec(3))
    with sutra.ConcurrentStorage(tmpdir_short) as s:
        assert s.vector_dimension == DIM
        assert np.array_equal(s.query_concept("1")["embedding"], vec(3))
    with pytest.raises(sutra.DimensionError):
        sutra.ConcurrentStorage(tmpdir_short, vector_dimension=DIM * 2).stats()


def test_get_storage_backend_modes(tmpdir_short, monkeypatch):
    monkeypatch.setenv("SUTRA_STORAGE_MODE", "server")
    s = sutra.get_storage_backend(tmpdir_short + "/none", timeout_ms=300)
    assert s.mode == "server"
    # Server mode without a store or coordinator: clear errors.
    with pytest.raises(sutra.StorageOSError) as ei:
        s.stats()
    assert "no such store" in str(ei.value)
    with pytest.raises(sutra.Unavailable):
        s.learn_concept("1", "x")
    s.close()
    monkeypatch.setenv("SUTRA_STORAGE_MODE", "embedded")
    with sutra.get_storage_backend(tmpdir_short, vector_dimension=DIM) as s:
        assert s.mode == "embedded"
        s.learn_concept("1", "x")
        assert s.info()["role"] == "writer"
    monkeypatch.setenv("SUTRA_STORAGE_MODE", "bogus")
    with pytest.raises(sutra.InvalidArgument):
        sutra.get_storage_backend(tmpdir_short)


def test_server_mode_store_locked_by_coordinator(coordinator):
    # An embedded store on a path the coordinator holds writes through it.
    s = sutra.ConcurrentStorage(coordinator.data, mode="embedded")
    e = s.learn_concept("1", "via the coordinator")
    assert s.info()["role"] == "client"
    with sutra.ConcurrentStorage(coordinator.data, mode="server") as t:
        assert t.wait_for_epoch(e, 10)
        assert t.query_concept("1")["content"] == "via the coordinator"
    s.close()
