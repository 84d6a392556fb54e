# SPDX-License-Identifier: MIT
"""Python-level latency and throughput of the sutra package, against the
same reads done in C (sutra-bench-pyanchor) on the same store in the same
run. docs/PERFORMANCE.md (section "Python") has the figures and how to read them.

Usage (from the source root, after meson compile -C BUILD):
    PYTHONPATH=BUILD/python /usr/bin/python3 bench/python_bench.py --build BUILD
        [--n 20000] [--dim 768] [--ops 20000] [--single 2000] [--threads 4]
        [--dir DIR] [--durability sync|relaxed]
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

import sutra


def xorshift(seed):
    x = seed
    mask = (1 << 64) - 1
    while True:
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        yield x


def pct(ns, p):
    s = sorted(ns)
    return s[min(len(s) - 1, int(p * len(s)))] / 1000.0


def summary(ns):
    return pct(ns, 0.5), pct(ns, 0.99), sum(ns) / len(ns) / 1000.0


def timed(fn, keys):
    ns = []
    clock = time.perf_counter_ns
    for k in keys:
        t = clock()
        fn(k)
        ns.append(clock() - t)
    return summary(ns)


def hexid(k):
    return f"{k:x}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="the meson build directory")
    ap.add_argument("--n", type=int, default=20000, help="concepts in the store")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--ops", type=int, default=20000, help="timed reads per operation")
    ap.add_argument("--single", type=int, default=2000, help="single learns timed")
    ap.add_argument("--threads", type=int, default=4, help="threads of the concurrent learns")
    ap.add_argument("--batch", type=int, default=1000, help="concepts per batch")
    ap.add_argument("--dir", default=None, help="where the store goes (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0x5EED)
    ap.add_argument("--durability", default="sync", choices=["sync", "relaxed"],
                    help="of the embedded coordinator")
    a = ap.parse_args()

    anchor = os.path.join(a.build, "bench", "sutra-bench-pyanchor")
    work = tempfile.mkdtemp(prefix="sutra-pybench-", dir=a.dir)
    print("python_bench: sutra", sutra.__version__)
    print("  command     ", " ".join([os.path.basename(sys.executable)] + sys.argv))
    print("  machine     ", platform.machine(), os.cpu_count(), "cpus,", platform.release(),
          "python", platform.python_version(), "numpy", np.__version__)
    print("  store       ", work, f"n={a.n} dim={a.dim}")
    rng = np.random.default_rng(a.seed)
    try:
        store = sutra.ConcurrentStorage(work, vector_dimension=a.dim, durability=a.durability)
        vecs = rng.standard_normal((a.n, a.dim), dtype=np.float32)

        # -- learns: single, from threads, batches --------------------------------
        single = min(a.single, a.n)
        t = time.perf_counter()
        ns = []
        for k in range(1, single + 1):
            t1 = time.perf_counter_ns()
            store.learn_concept(hexid(k), f"concept {k} of the python bench", vecs[k - 1])
            ns.append(time.perf_counter_ns() - t1)
        el = time.perf_counter() - t
        p50, p99, mean = summary(ns)
        print(f"\nlearn_concept, one thread, {a.durability} durability ({single} learns, "
              f"{a.dim}-d):")
        print(f"  {single / el:10.0f} learns/s   p50 {p50:.1f} us  p99 {p99:.1f} us")

        nthreads = a.threads
        per = single // nthreads
        base = single + 1

        def learner(j):
            for k in range(base + j * per, base + (j + 1) * per):
                store.learn_concept(hexid(k), f"concept {k} of the python bench", vecs[k - 1])

        th = [threading.Thread(target=learner, args=(j,)) for j in range(nthreads)]
        t = time.perf_counter()
        for x in th:
            x.start()
        for x in th:
            x.join()
        el = time.perf_counter() - t
        print(f"learn_concept, {nthreads} threads (group commit): "
              f"{nthreads * per / el:10.0f} learns/s")

        k = base + nthreads * per
        t = time.perf_counter()
        batches = 0
        first_batch = k
        while k <= a.n:
            with store.batch() as b:
                for kk in range(k, min(a.n, k + a.batch - 1) + 1):
                    b.learn_concept(hexid(kk), f"concept {kk} of the python bench",
                                    vecs[kk - 1])
            k = min(a.n, k + a.batch - 1) + 1
            batches += 1
        el = time.perf_counter() - t
        nb = a.n - first_batch + 1
        if nb > 0:
            print(f"batch of {a.batch} learn_concept: {nb / el:10.0f} concepts/s "
                  f"({batches} batches, {el:.2f} s)")
        # A chain plus one random edge per concept, in batches.
        t = time.perf_counter()
        edges = 0
        for start in range(1, a.n + 1, a.batch):
            with store.batch() as b:
                for kk in range(start, min(a.n, start + a.batch - 1) + 1):
                    if kk < a.n:
                        b.learn_association(hexid(kk), hexid(kk + 1), 0, 0.5)
                        edges += 1
                    b.learn_association(hexid(kk), hexid(int(rng.integers(1, a.n + 1))), 1,
                                        float(rng.random()))
                    edges += 1
        el = time.perf_counter() - t
        print(f"batch of {2 * a.batch} learn_association: {edges / el:10.0f} associations/s")
        e = store.flush()
        # Let the coordinator's background work settle (a store idle for a
        # second is flushed and merged into one segment, its HNSW graph
        # built): the reads below then read one segment, as a store that is
        # not being written does, and Python and C time the same state. The
        # tail then holds only the coordinator's own empty commits.
        deadline = time.monotonic() + 600
        while True:
            st = store.stats()
            if st["segment_count"] == 1 and st["tail_bytes"] < 1024:
                break
            if time.monotonic() > deadline:
                sys.exit("python_bench: the store did not settle into one segment")
            time.sleep(0.2)
        print(f"store: epoch {st['epoch']}, {st['concept_count']} concepts, "
              f"{st['association_count']} associations, {st['segment_count']} segments, "
              f"tail {st['tail_bytes']} bytes, file {st['file_size'] >> 20} MiB")

        # -- reads: Python ---------------------------------------------------------
        gen = xorshift(a.seed)
        keys = [hexid(next(gen) % a.n + 1) for _ in range(a.ops)]
        # Warm both sides alike: one pass over the keys.
        for kk in keys:
            store.contains(kk)
        py = {}
        py["get_acquire_copy"] = timed(store.query_concept, keys)
        with store.snapshot() as snap:
            py["get_in_snapshot"] = timed(snap.query_concept, keys)
            py["contains_in_snapshot"] = timed(snap.contains, keys)
            py["neighbors_in_snapshot"] = timed(snap.get_neighbors, keys)
            qs = rng.uniform(-1, 1, (min(a.ops, 2000), a.dim)).astype(np.float32)
            py["vector_search_k10_ef50"] = timed(
                lambda q: snap.vector_search(q, k=10, ef_search=50), qs)
        py["store.contains"] = timed(store.contains, keys)
        py["store.get_neighbors"] = timed(store.get_neighbors, keys)

        # -- reads: C, same store, same keys ----------------------------------------
        args = [anchor, store.path, str(a.n), str(a.ops), str(a.seed), str(a.dim)]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        c = {}
        for line in out.splitlines():
            name, p50, p99, mean = line.split()
            c[name] = (float(p50), float(p99), float(mean))

        print(f"\nreads ({a.ops} each, random ids; microseconds; Python through the "
              f"package, C through libsutra-reader in sutra-bench-pyanchor):")
        print(f"  {'operation':28s} {'py p50':>8s} {'py p99':>8s} {'py mean':>8s} "
              f"{'C p50':>8s} {'C p99':>8s} {'C mean':>8s} {'py/C p50':>9s}")
        labels = {
            "get_acquire_copy": "query_concept (own snapshot)",
            "get_in_snapshot": "snap.query_concept (0-copy)",
            "contains_in_snapshot": "snap.contains",
            "neighbors_in_snapshot": "snap.get_neighbors",
            "vector_search_k10_ef50": "vector_search k=10 ef=50",
            "store.contains": "store.contains",
            "store.get_neighbors": "store.get_neighbors",
        }
        for name, (p50, p99, mean) in py.items():
            cc = c.get(name)
            cs = (f"{cc[0]:8.2f} {cc[1]:8.2f} {cc[2]:8.2f} {p50 / cc[0]:8.1f}x" if cc else
                  f"{'':8s} {'':8s} {'':8s} {'':9s}")
            print(f"  {labels[name]:28s} {p50:8.2f} {p99:8.2f} {mean:8.2f} {cs}")
        for name, cc in c.items():
            if name not in py:
                print(f"  {'C only: sutra_reader_' + name:28s} {'':8s} {'':8s} {'':8s} "
                      f"{cc[0]:8.2f} {cc[1]:8.2f} {cc[2]:8.2f}")
        print("  (C acquire+get+copy+release is the C form of query_concept outside a "
              "snapshot;\n   sutra_reader_refresh is the part of it that reads the newest "
              "epoch)")
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
