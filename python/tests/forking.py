# SPDX-License-Identifier: MIT
"""Run by test_processes.py in a fresh interpreter (so that nothing of nng
runs before the forks): forked multiprocessing workers on one embedded
store, then a child forked after the parent started nng.
Usage: forking.py DIR"""

import multiprocessing as mp
import sys

import numpy as np

import sutra

DIM = 8
N = 25


def worker(store, k, barrier, epochs, errors):
    try:
        mine = []
        for i in range(N):
            e = store.learn_concept(f"{k}{i:04x}", f"worker {k} concept {i}",
                                    np.full(DIM, k + i + 1, dtype=np.float32))
            mine.append(e)
        with store.batch() as b:
            for i in range(1, N):
                b.learn_association(f"{k}{i - 1:04x}", f"{k}{i:04x}", k)
        epochs[k] = b.epoch
        barrier.wait(60)  # both have written
        other = 1 - k
        assert store.wait_for_epoch(epochs[other], 30)
        for i in range(N):
            c = store.query_concept(f"{other}{i:04x}")
            assert c is not None and c["content"] == f"worker {other} concept {i}"
            assert c["embedding"][0] == other + i + 1
        path = store.find_path(f"{other}0000", f"{other}{19:04x}", max_depth=20)
        assert path is not None and len(path) == 20
        # Across the workers' concepts: an association between them.
        e = store.learn_association(f"{k}0000", f"{other}0000", 4)
        assert store.wait_for_epoch(e, 30)
        barrier.wait(60)  # neither exits (the writer among them) before both are done
    except BaseException as exc:  # reported to the parent
        errors.put(f"worker {k}: {exc!r}")
        barrier.abort()
        raise


def after_nng(store, q):
    try:
        c = store.query_concept("00000")
        q.put(("read", c["content"] if c else None))
        try:
            store.learn_concept("ff", "from the child")
            q.put(("write", "no error"))
        except sutra.Unavailable as exc:
            q.put(("write", str(exc)))
    except BaseException as exc:
        q.put(("error", repr(exc)))


def main():
    path = sys.argv[1]
    ctx = mp.get_context("fork")
    # Created before the fork, used only after it: nothing is open yet.
    store = sutra.ConcurrentStorage(path, vector_dimension=DIM)
    barrier = ctx.Barrier(2)
    manager_epochs = ctx.Array("Q", 2)
    errors = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(store, k, barrier, manager_epochs, errors))
             for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    if any(p.exitcode != 0 for p in procs):
        msgs = []
        while not errors.empty():
            msgs.append(errors.get())
        print("forked workers failed:", [p.exitcode for p in procs], msgs)
        return 1
    # The parent, which never used nng, opens the store now (the workers,
    # and with them the writer, have exited): it sees everything.
    assert store.stats()["concept_count"] == 2 * N
    assert set(store.get_neighbors("00000")) == {sutra.normalize_id("00001"),
                                                 sutra.normalize_id("10000")}
    print("forked workers: ok")

    # The parent has started nng (it runs the coordinator now): a child
    # forked from it can read but not write, and is told why.
    store.learn_concept("00000", "parent wrote")
    q = ctx.Queue()
    p = ctx.Process(target=after_nng, args=(store, q))
    p.start()
    got = dict(q.get(timeout=60) for _ in range(2))
    p.join(60)
    assert p.exitcode == 0, got
    assert got.get("read") == "parent wrote", got
    assert "forked" in got.get("write", ""), got
    assert not store.contains("ff")
    print("fork after nng: ok")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
