"""Sums Nsight Compute's per-kernel durations by kernel name: where the GPU time of a run goes.

Usage: ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw PROGRAM > k.csv
       python3 ncu_summary.py k.csv [TOP]
"""
import csv, sys, collections

rows = [r for r in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"'))]
head = rows[0]
name_col = head.index("Kernel Name")
time_col = next(i for i, h in enumerate(head) if h.startswith("gpu__time_duration"))
total, count = collections.Counter(), collections.Counter()
for r in rows[2:]:
    try:
        t = float(r[time_col].replace(",", ""))
    except (ValueError, IndexError):
        continue
    name = r[name_col].split("(")[0][:70]
    total[name] += t
    count[name] += 1
grand = sum(total.values())
print(f"{sum(count.values())} kernels, {grand / 1e6:.1f} ms of GPU time")
for name, t in total.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 25):
    print(f"{t / 1e6:9.2f} ms {100 * t / grand:5.1f}% {count[name]:7d}x  {name}")
