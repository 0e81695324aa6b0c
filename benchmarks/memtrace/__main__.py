"""Compare the heap snapshots a traced panel wrote: ``python -m benchmarks.memtrace DIR [N]``.

Prints the ``N`` (20) call sites whose memory grew most between the second snapshot (after
warm-up) and the last, with the traceback of the largest few.
"""

import sys
import tracemalloc
from pathlib import Path


def main(argv: list[str]) -> int:
    folder, top = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 20
    by_process: dict[str, list[Path]] = {}
    for path in folder.glob("*.snapshot"):
        by_process.setdefault(path.stem.split("-")[0], []).append(path)
    # The process that lived longest: the worker (short-lived forks wrote one or none).
    paths = sorted(max(by_process.values(), key=len, default=[]), key=lambda p: float(p.stem.split("-")[1]))
    if len(paths) < 2:
        print(f"{folder} has {len(paths)} snapshot(s); two are needed", file=sys.stderr)
        return 2
    first, last = paths[1 if len(paths) > 2 else 0], paths[-1]
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen*")]
    old = tracemalloc.Snapshot.load(first).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(last).filter_traces(ignore)
    total = sum(s.size for s in new.statistics("filename")) - sum(s.size for s in old.statistics("filename"))
    print(f"{first.name} -> {last.name}: traced memory {total / 2**20:+.1f} MiB")
    for stat in new.compare_to(old, "lineno")[:top]:
        print(f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+8d} blocks  {stat.traceback[0]}")
    print("\nlargest growth by traceback:")
    for stat in new.compare_to(old, "traceback")[:5]:
        print(f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+8d} blocks")
        for line in stat.traceback.format()[-16:]:
            print("    " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
