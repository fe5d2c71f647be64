"""Benchmark (not a test): the Python-facing overhead of a metric call on 100k pairs.

Times `assay.metrics.word_recall_batch` called from Python (list-of-str arguments converted,
GIL released, numpy array returned) against the same Rust call timed inside Rust on the same
pairs (`_word_recall_rust_seconds`), best of N runs each, and prints the overhead. The target is
within 10% of the Rust call. Texts are Datacomp-like answers (8-60 words, a few non-ASCII).

    python bindings/python/bench/bench_metrics.py [--pairs 100000] [--threads 1] [--repeats 7]
"""

import argparse
import random
import time

from assay import metrics
from assay._assay import metrics as native

WORDS = (
    "the sky is blue because molecules scatter shorter wavelengths more strongly answer four two "
    "plus equals therefore rayleigh light sun atmosphere red green Ünïcödé naïve café résumé 42 "
    "3.14 x y z proof hence thus consider step first second finally result value"
).split()


def texts(rng, n):
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60))) for _ in range(n)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(0)
    outputs, references = texts(rng, args.pairs), texts(rng, args.pairs)

    rust = native._word_recall_rust_seconds(outputs, references, args.threads, args.repeats)
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        metrics.word_recall_batch(outputs, references, threads=args.threads)
        best = min(best, time.perf_counter() - start)
    overhead = best / rust - 1.0
    print(f"word_recall on {args.pairs} pairs, {args.threads} thread(s), best of {args.repeats}:")
    print(f"  Rust call        {rust * 1e3:8.2f} ms")
    print(f"  Python call      {best * 1e3:8.2f} ms")
    print(f"  overhead         {overhead * 100:+7.1f} %  (target: within +10 %)")


if __name__ == "__main__":
    main()
