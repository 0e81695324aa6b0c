"""Run the benchmarks: ``python -m benchmarks [NAME ...] [OPTIONS]``.

Options (``--duration 30`` and the like) go to the one benchmark chosen; see its ``--help``.
The exit status is non-zero when a benchmark reports a failure (returns a non-zero number).
"""

import importlib
import inspect
import platform
import sys
from pathlib import Path

import psutil


def main(argv: list[str]) -> int:
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    words, options = argv[:first_option], argv[first_option:]
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    chosen = [n for n in names if not words or any(word in n for word in words)]
    if not chosen:
        print(f"no benchmark matches {words}; there are: {', '.join(names)}", file=sys.stderr)
        return 2
    if options and len(chosen) != 1:
        print(f"options go to one benchmark; {', '.join(chosen)} match", file=sys.stderr)
        return 2
    print(
        f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    failed = False
    for name in chosen:
        print(f"\n== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        if options and not inspect.signature(module.main).parameters:
            print(f"{name} takes no options", file=sys.stderr)
            return 2
        failed |= bool(module.main(options) if options else module.main())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
