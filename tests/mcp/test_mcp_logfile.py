"""A server's log: tail reaches into rotated files, follow survives a rotation, and the
supervision timing defaults are the documented ones."""

import logging
import logging.handlers

from open1panel_ai.mcp import logfile
from open1panel_ai.mcp.supervisor import Timing


def rotating_logger(path, max_bytes):
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=logfile.BACKUPS)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test-{path}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler


def test_tail_reads_across_rotated_files_and_the_total_stays_bounded(tmp_path):
    path = tmp_path / "s.log"
    logger, handler = rotating_logger(path, 200)
    for n in range(100):
        logger.info("line %03d", n)
    handler.close()
    assert logfile.tail(path, 5) == [f"line {n:03d}" for n in range(95, 100)]
    kept = logfile.tail(path, 1000)
    assert kept == [f"line {n:03d}" for n in range(100 - len(kept), 100)]  # oldest dropped, in order
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * 200 + 20
    assert logfile.tail(tmp_path / "missing.log", 10) == []


def test_follow_returns_new_whole_lines_and_starts_over_after_a_rotation(tmp_path):
    path = tmp_path / "s.log"
    path.write_text("old\n")
    follower = logfile.Follower(path)
    assert follower.read_new() == []
    with open(path, "a") as file:
        file.write("one\ntwo\nhalf")
    assert follower.read_new() == ["one", "two"]
    with open(path, "a") as file:
        file.write(" done\n")
    assert follower.read_new() == ["half done"]
    path.rename(tmp_path / "s.log.1")
    path.write_text("after rotation\n")
    assert follower.read_new() == ["after rotation"]


def test_note_appends_a_stamped_line(tmp_path):
    path = tmp_path / "s.log"
    logfile.note(path, "supervisor: hello")
    [line] = logfile.tail(path, 10)
    assert line.endswith(" supervisor: hello") and line[:4].isdigit()


def test_the_default_timing_is_5s_doubling_to_60s_10_tries_reset_after_30s():
    timing = Timing.from_settings({})
    assert (timing.backoff, timing.backoff_max, timing.tries, timing.stable) == (5.0, 60.0, 10, 30.0)
    assert [timing.delay(n) for n in range(1, timing.tries + 1)] == [5, 10, 20, 40, 60, 60, 60, 60, 60, 60]
    assert Timing.from_settings({"mcp_tries": "3", "mcp_backoff": "0.5"}).tries == 3
