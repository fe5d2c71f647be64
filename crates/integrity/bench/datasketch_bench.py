"""The Python side of the near-duplicate benchmark: datasketch MinHash + MinHashLSH over the corpus
written by `cargo run --release -p assay-integrity --example near_dup_bench -- --corpus PATH`,
with the same num_perm, shingle size, threshold and (bands, rows).

    /work/venv-integrity/bin/pip install datasketch numpy
    /work/venv-integrity/bin/python crates/integrity/bench/datasketch_bench.py PATH

Like the Rust side, each row is lower-cased and split on whitespace (the corpus is plain ASCII
words, so this equals the Rust canonical form), shingled into word n-grams, queried against the
rows before it (candidates verified with the MinHash Jaccard estimate, best match kept), then
inserted. Timing excludes reading the file. Single-threaded, as datasketch is.
"""

import json
import sys
import time

from datasketch import MinHash, MinHashLSH


def main(path):
    with open(path) as f:
        header = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    num_perm, k, threshold = header["num_perm"], header["shingle"], header["threshold"]
    params = (header["bands"], header["rows_per_band"])
    texts = [r["text"] for r in rows]
    origin = [r["copy_of"] for r in rows]

    start, cpu_start = time.perf_counter(), time.process_time()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, params=params)
    signatures, found = [], []
    for i, text in enumerate(texts):
        tokens = text.lower().split()
        width = min(k, len(tokens))
        shingles = [" ".join(tokens[j:j + width]).encode() for j in range(len(tokens) - width + 1)]
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(shingles)
        best, best_j = None, -1.0
        for candidate in lsh.query(m):
            j = signatures[candidate].jaccard(m)
            if j >= threshold and (j > best_j or (j == best_j and candidate < best)):
                best, best_j = candidate, j
        found.append(best)
        lsh.insert(i, m)
        signatures.append(m)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    def root(i):
        return origin[i] if origin[i] is not None else i

    planted = sum(o is not None for o in origin)
    hits = sum(1 for i in range(len(texts)) if origin[i] is not None and found[i] is not None and root(found[i]) == root(i))
    false_positives = sum(1 for i in range(len(texts)) if found[i] is not None and root(found[i]) != root(i))
    print(json.dumps({
        "implementation": "datasketch (Python)", "rows": len(texts), "planted": planted,
        "bands": params[0], "rows_per_band": params[1], "total_s": total, "cpu_s": cpu,
        "recall": hits / max(planted, 1), "false_positives": false_positives,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
