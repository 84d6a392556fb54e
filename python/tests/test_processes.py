# SPDX-License-Identifier: MIT
"""Shared state across processes: a coordinator, two HTTP API processes
(uvicorn) on two ports, a killed and restarted coordinator, embedded
workers of one uvicorn, and the hand-over of the embedded writer."""

import os
import signal
import subprocess
import sys

import httpx
import pytest

import sutra
from conftest import DIM, ApiServer, Coordinator


def emb(x):
    return [float(x)] + [0.5] * (DIM - 1)


@pytest.fixture
def http():
    with httpx.Client(timeout=60) as c:
        yield c


def test_two_api_processes_share_one_store(coordinator, http):
    a = ApiServer(coordinator.data, "server")
    b = ApiServer(coordinator.data, "server")
    try:
        # Learn through the first, read through the second after its epoch.
        r = http.post(a.url + "/learn", json={"content": "hello world", "embedding": emb(1)})
        assert r.status_code == 200, r.text
        cid, e = r.json()["id"], r.json()["epoch"]
        assert cid == sutra.concept_id("hello world")
        r = http.get(f"{b.url}/concepts/{cid}", params={"min_epoch": e})
        assert r.status_code == 200, r.text
        assert r.json()["content"] == "hello world" and r.json()["embedding"] == emb(1)

        r = http.post(a.url + "/learn", json={"id": "2", "content": "second"})
        assert r.json()["id"] == sutra.normalize_id("2")
        r = http.post(a.url + "/associations",
                      json={"source_id": cid, "target_id": "2", "assoc_type": 1})
        assert r.status_code == 200, r.text
        e = r.json()["epoch"]
        r = http.get(f"{b.url}/neighbors/2", params={"min_epoch": e, "direction": "in"})
        assert r.status_code == 200, r.text
        assert [n["id"] for n in r.json()["neighbors"]] == [cid]
        assert r.json()["neighbors"][0]["assoc_type"] == 1
        r = http.get(f"{b.url}/path", params={"start": cid, "end": "2", "min_epoch": e})
        assert r.json()["path"] == [cid, sutra.normalize_id("2")]

        # Stats of one reflect the writes through the other.
        for i in range(3, 13):
            e = http.post(a.url + "/learn", json={"id": f"{i:x}", "content": f"c{i}"}).json()[
                "epoch"]
        assert http.get(f"{b.url}/epoch", params={"wait_for": e}).json()["epoch"] >= e
        st = http.get(b.url + "/stats").json()
        assert st["concept_count"] == 12 and st["association_count"] == 1
        assert st["mode"] == "server" and st["epoch"] >= e
        # And the other way round.
        e = http.post(b.url + "/learn", json={"id": "abc", "content": "from b"}).json()["epoch"]
        r = http.get(f"{a.url}/concepts/abc", params={"min_epoch": e})
        assert r.json()["content"] == "from b"

        # Bad input: clear 4xx errors.
        r = http.post(a.url + "/learn", json={"content": "x", "embedding": [1.0, 2.0]})
        assert r.status_code == 400 and r.json()["error"] == "SUTRA_EDIM"
        assert "dimension" in r.json()["detail"]
        r = http.post(a.url + "/learn", json={"content": ""})
        assert r.status_code == 422
        r = http.post(a.url + "/learn", json={"id": "zz", "content": "x"})
        assert r.status_code == 400 and r.json()["kind"] == "InvalidArgument"
        r = http.post(a.url + "/learn", content=b"not json",
                      headers={"content-type": "application/json"})
        assert r.status_code == 422
        r = http.post(a.url + "/associations", json={"source_id": cid, "target_id": "999"})
        assert r.status_code == 404 and r.json()["error"] == "SUTRA_ENOTFOUND"
        r = http.post(a.url + "/associations",
                      json={"source_id": cid, "target_id": "2", "assoc_type": 300})
        assert r.status_code == 422
        assert http.get(f"{b.url}/concepts/999").status_code == 404
        assert http.get(f"{b.url}/concepts/xyz").status_code == 400
        assert http.get(f"{b.url}/neighbors/999").status_code == 404
        assert http.get(f"{b.url}/neighbors/2", params={"direction": "up"}).status_code == 400
        assert http.get(f"{b.url}/path", params={"start": "1", "end": "2",
                                                 "max_depth": 99}).status_code == 422
        assert http.get(f"{b.url}/path", params={"start": "1"}).status_code == 422
        assert http.post(b.url + "/query", json={}).status_code == 400
        assert http.post(b.url + "/query", json={"text": "x", "mode": "xor"}).status_code == 400
        r = http.post(b.url + "/query", json={"text": "hello"})
        assert r.status_code == 200 and r.json()["results"][0]["id"] == cid
        r = http.post(b.url + "/query", json={"vector": emb(1), "k": 2})
        assert r.status_code == 200 and r.json()["results"][0]["id"] == cid
        r = http.post(b.url + "/query", json={"vector": [1.0], "k": 2})
        assert r.status_code == 400
        r = http.get(f"{b.url}/concepts/{cid}", params={"min_epoch": 10**9})
        assert r.status_code == 504
        # Lone surrogates and numbers past what C takes: 4xx, never a 500
        # (issue 14, defect 8).
        for body in ({"content": "a\ud800b"}, {"content": "ok", "metadata": "x\udfffy"}):
            r = http.post(a.url + "/learn", json=body)
            assert r.status_code == 400 and r.json()["error"] == "InvalidText", r.text
        r = http.post(b.url + "/query", json={"text": "a\ud800b"})
        assert r.status_code == 400 and r.json()["error"] == "InvalidText", r.text
        r = http.get(f"{b.url}/neighbors/2", params={"limit": "100000000000000000000"})
        assert r.status_code == 422, r.text
        r = http.get(f"{b.url}/concepts/{cid}", params={"min_epoch": str(2**64)})
        assert r.status_code == 422, r.text
        assert http.get(f"{b.url}/epoch", params={"wait_for": str(2**64 + 1)}).status_code == 422

        # kill -9 the coordinator: writes report Unavailable, reads go on.
        coordinator.kill9()
        r = http.post(a.url + "/learn", json={"id": "dead", "content": "lost"})
        assert r.status_code == 503 and r.json()["error"] == "SUTRA_EUNAVAIL", r.text
        r = http.post(b.url + "/associations", json={"source_id": cid, "target_id": "2"})
        assert r.status_code == 503
        r = http.get(f"{b.url}/concepts/{cid}")
        assert r.status_code == 200 and r.json()["content"] == "hello world"
        assert http.get(a.url + "/stats").json()["concept_count"] == 13
        assert http.get(f"{a.url}/neighbors/2").status_code == 200

        # Restarted, it takes writes again through the same API processes.
        coordinator.start()
        r = http.post(a.url + "/learn", json={"id": "bac", "content": "after restart"})
        assert r.status_code == 200, r.text
        e = r.json()["epoch"]
        r = http.get(f"{b.url}/concepts/bac", params={"min_epoch": e})
        assert r.status_code == 200 and r.json()["content"] == "after restart"
        assert http.get(b.url + "/stats").json()["concept_count"] == 14
    finally:
        a.stop()
        b.stop()


def test_uvicorn_workers_embedded(tmpdir_short, http):
    """uvicorn --workers 2 in embedded mode: the first worker to write runs
    the coordinator, the other writes through it; both read everything."""
    api = ApiServer(tmpdir_short, "embedded", workers=2)
    try:
        epochs = {}
        for i in range(1, 41):
            r = http.post(api.url + "/learn", json={"id": f"{i:x}", "content": f"c{i}",
                                                    "embedding": emb(i)})
            assert r.status_code == 200, r.text
            epochs[i] = r.json()["epoch"]
        pids = set()
        for i in range(1, 41):
            r = http.get(f"{api.url}/concepts/{i:x}", params={"min_epoch": epochs[i]})
            assert r.status_code == 200 and r.json()["content"] == f"c{i}"
        last = max(epochs.values())
        for _ in range(20):
            st = http.get(f"{api.url}/epoch", params={"wait_for": last})
            assert st.status_code == 200
            st = http.get(api.url + "/stats").json()
            assert st["concept_count"] == 40
            pids.add((st["pid"], st["role"]))
        roles = {role for _, role in pids}
        assert roles <= {"writer", "client", "none"}
    finally:
        api.stop()


def test_embedded_writer_handover(tmpdir_short):
    """An embedded writer in another process dies (kill -9): this process,
    which wrote through it, becomes the writer on its next write."""
    script = (
        "import sys, sutra\n"
        f"s = sutra.ConcurrentStorage({tmpdir_short!r}, vector_dimension={DIM})\n"
        "print(s.learn_concept('1', 'from the first writer'), flush=True)\n"
        "sys.stdin.read()\n")
    first = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        e = int(first.stdout.readline())
        s = sutra.ConcurrentStorage(tmpdir_short, timeout_ms=1000)
        assert s.wait_for_epoch(e, 10)
        e2 = s.learn_concept("2", "through the first")
        assert s.info()["role"] == "client"
        first.send_signal(signal.SIGKILL)
        first.wait()
        e3 = s.learn_concept("3", "after the hand-over")
        assert e3 > e2 and s.info()["role"] == "writer"
        assert [s.query_concept(i)["content"] for i in "123"] == [
            "from the first writer", "through the first", "after the hand-over"]
        s.close()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_forked_workers(tmpdir_short):
    """multiprocessing (fork) workers reading and writing one store; and a
    child forked after the parent started nng (reads work, writes raise)."""
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, os.path.join(here, "forking.py"), tmpdir_short],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "forked workers: ok" in r.stdout
    assert "fork after nng: ok" in r.stdout


def test_coordinator_restart_with_server_store(tmpdir_short):
    c = Coordinator(tmpdir_short).start()
    s = sutra.ConcurrentStorage(c.data, mode="server", timeout_ms=800)
    try:
        s.learn_concept("1", "before")
        c.kill9()
        with pytest.raises(sutra.Unavailable) as ei:
            s.learn_concept("2", "lost")
        assert ei.value.code == -1008
        assert s.query_concept("1")["content"] == "before"
        c.start()
        e = s.learn_concept("2", "after")
        assert s.wait_for_epoch(e, 10) and s.contains("2")
    finally:
        s.close()
        c.stop()
