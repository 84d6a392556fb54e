#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The python3-hnswlib column of sutra-bench-vector: builds and searches the
# vectors the bench hands over in files, on one thread, and prints
# "build <seconds>" and "ef <ef> <recall@k> <queries/s>" lines (the best
# of REPS passes at each ef).
import sys
import time

import hnswlib
import numpy as np


def main():
    if len(sys.argv) != 11:
        sys.exit("usage: vector_hnswlib.py DIM BASE.f32 QUERIES.f32 TRUTH.u32 K M EFC EF,EF,... SEED REPS")
    dim = int(sys.argv[1])
    base = np.fromfile(sys.argv[2], dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(sys.argv[3], dtype="<f4").reshape(-1, dim)
    k = int(sys.argv[5])
    truth = np.fromfile(sys.argv[4], dtype="<u4").reshape(-1, k)
    m, efc = int(sys.argv[6]), int(sys.argv[7])
    efs = [int(x) for x in sys.argv[8].split(",")]

    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=len(base), M=m, ef_construction=efc,
                     random_seed=int(sys.argv[9]))
    index.set_num_threads(1)
    reps = int(sys.argv[10])
    # Process CPU time, as the bench measures its own thread's: load from
    # other processes on the machine then changes the figures less.
    t = time.process_time()
    index.add_items(base, np.arange(len(base)), num_threads=1)
    print("build %.6f" % (time.process_time() - t), flush=True)

    best, found = {}, {}
    for _ in range(reps):
        for ef in efs:
            index.set_ef(max(ef, k))
            t = time.process_time()
            labels, _ = index.knn_query(queries, k=k, num_threads=1)
            secs = time.process_time() - t
            best[ef] = min(best.get(ef, secs), secs)
            found[ef] = labels
    for ef in efs:
        labels = found[ef]
        hits = sum(len(set(labels[i]) & set(truth[i])) for i in range(len(queries)))
        print("ef %d %.6f %.3f" % (ef, hits / (k * len(queries)), len(queries) / best[ef]), flush=True)


if __name__ == "__main__":
    main()
