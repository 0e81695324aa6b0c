"""Whether a panel under sustained load keeps its memory, threads and open files flat.

The load benchmark reads the panel's processes once a second through its measured phase
(:class:`Reading`); :func:`judge` turns the readings into a :class:`Verdict`: the worker's
RSS at the end of warm-up (two minutes into the phase, or half of a shorter phase) and at the
end, the slope of a straight line fitted to the RSS after warm-up, and the same for the thread
and open-file counts. A run fails when

- the RSS at the end is more than :data:`RSS_GROWTH` times the RSS at the end of warm-up, or
- the thread or open-file count at the end is more than :data:`COUNT_GROWTH` times its count
  at the end of warm-up, plus :data:`COUNT_SLACK`: a pool that has filled stays put, a count
  that grows with every request or event does not.

"At the end" and "at the end of warm-up" are each the highest reading in the 30 s up to that
moment, so a single busy second does not decide the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks import pngplot

WARM_UP = 120.0
RSS_GROWTH = 1.1
COUNT_GROWTH = 1.1
COUNT_SLACK = 16
#: Seconds between two lines of the live report, and the width of the windows compared.
REPORT_EVERY = 30.0


@dataclass(frozen=True)
class Reading:
    seconds: float  # into the measured phase
    master_mib: float
    worker_mib: float
    threads: int
    fds: int


def read(master_pid: int, seconds: float) -> Reading:
    """The gunicorn master's RSS and its workers' RSS, threads and open file descriptors."""
    master = psutil.Process(master_pid)
    workers = master.children()
    return Reading(
        seconds,
        master.memory_info().rss / 2**20,
        sum(w.memory_info().rss for w in workers) / 2**20,
        sum(w.num_threads() for w in workers),
        sum(w.num_fds() for w in workers),
    )


def line(reading: Reading) -> str:
    return (
        f"  {reading.seconds:>5.0f} s  worker RSS {reading.worker_mib:>6.1f} MiB, "
        f"{reading.threads:>5} threads, {reading.fds:>5} open files"
    )


@dataclass(frozen=True)
class Verdict:
    warm_up: float
    rss_warm: float
    rss_end: float
    slope: float  # MiB per minute after warm-up
    threads_warm: int
    threads_end: int
    fds_warm: int
    fds_end: int
    failures: tuple[str, ...]

    def lines(self) -> list[str]:
        return [
            f"worker RSS at {self.warm_up:.0f} s (end of warm-up) {self.rss_warm:.1f} MiB, at the end "
            f"{self.rss_end:.1f} MiB: {self.rss_end / self.rss_warm:.3f}x (limit {RSS_GROWTH}x); "
            f"slope after warm-up {self.slope:+.2f} MiB/min ({self.slope * 60:+.0f} MiB/h)",
            f"worker threads {self.threads_warm} -> {self.threads_end}, open files {self.fds_warm} -> "
            f"{self.fds_end} (limit {COUNT_GROWTH}x + {COUNT_SLACK})",
        ] + [f"SOAK FAILURE: {failure}" for failure in self.failures]


def warm_up_of(duration: float) -> float:
    """Two minutes, or half of a measured phase shorter than four."""
    return WARM_UP if duration >= 2 * WARM_UP else duration / 2


def _peak(readings: list[Reading], until: float, attribute: str) -> float:
    window = [r for r in readings if until - REPORT_EVERY <= r.seconds <= until] or [
        min(readings, key=lambda r: abs(r.seconds - until))
    ]
    return max(getattr(r, attribute) for r in window)


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of ``points`` (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def judge(readings: list[Reading], duration: float) -> Verdict:
    warm_up = warm_up_of(duration)
    end = readings[-1].seconds
    rss_warm, rss_end = _peak(readings, warm_up, "worker_mib"), _peak(readings, end, "worker_mib")
    counts = {
        name: (int(_peak(readings, warm_up, name)), int(_peak(readings, end, name))) for name in ("threads", "fds")
    }
    after = [(r.seconds / 60, r.worker_mib) for r in readings if r.seconds >= warm_up]
    failures = []
    if rss_end > RSS_GROWTH * rss_warm:
        failures.append(
            f"the worker's RSS grew from {rss_warm:.1f} MiB at {warm_up:.0f} s to "
            f"{rss_end:.1f} MiB, more than {RSS_GROWTH}x"
        )
    for name, label in (("threads", "thread"), ("fds", "open-file")):
        warm, last = counts[name]
        if last > COUNT_GROWTH * warm + COUNT_SLACK:
            failures.append(f"the worker's {label} count grew from {warm} at {warm_up:.0f} s to {last}")
    return Verdict(warm_up, rss_warm, rss_end, slope(after), *counts["threads"], *counts["fds"], tuple(failures))


def plot(path: Path, readings: list[Reading], verdict: Verdict, title: str) -> None:
    """The worker's RSS, threads and open files through the measured phase, with the end of
    warm-up and the RSS limit as dashed lines."""
    pngplot.draw(
        path,
        title,
        "seconds into the measured phase",
        [
            pngplot.Panel(
                "worker RSS (MiB)",
                [
                    pngplot.Series("RSS", [(r.seconds, r.worker_mib) for r in readings], pngplot.BLUE),
                    pngplot.Series(f"{RSS_GROWTH}x RSS at warm-up", [], pngplot.RED),
                ],
                hlines=[(RSS_GROWTH * verdict.rss_warm, pngplot.RED)],
                vlines=[(verdict.warm_up, pngplot.GREY)],
            ),
            pngplot.Panel(
                "worker threads and open files",
                [
                    pngplot.Series("threads", [(r.seconds, r.threads) for r in readings], pngplot.GREEN),
                    pngplot.Series("open files", [(r.seconds, r.fds) for r in readings], pngplot.ORANGE),
                ],
                vlines=[(verdict.warm_up, pngplot.GREY)],
                from_zero=True,
            ),
        ],
    )
