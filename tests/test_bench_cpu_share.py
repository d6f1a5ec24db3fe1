"""The benchmarks' CPU accounting (bench/cpu_share.py) counts the processes it is given."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench import cpu_share

SPIN = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"


def test_a_busy_child_is_counted_in_its_group_and_the_machine() -> None:
    spinner: list[int] = []
    window = cpu_share.Window({"spinner": lambda: spinner, "me": lambda: [os.getpid()]})
    window.start()
    # Started after start(): the group is read again at stop(), as PostgreSQL backends are.
    child = subprocess.Popen([sys.executable, "-c", SPIN.format(s=0.6), "sleep"])
    try:
        spinner.append(child.pid)
        deadline = time.monotonic() + 30
        # Not child.poll(): reaping it would remove its /proc entry; an exited child stays
        # readable (a zombie) until waited for.
        while (cpu_share.process_seconds(child.pid) or 0.0) < 0.5 < deadline - time.monotonic():
            time.sleep(0.05)
        figures = window.stop(events=1000)
    finally:
        child.wait(timeout=30)
    # 1000 events over >= 0.5 CPU seconds of the spinner: >= 500 us each (its interpreter's
    # start adds a little); the test process mostly slept.
    assert figures["spinner_us_per_event"] >= 450, figures
    assert figures["me_us_per_event"] < figures["spinner_us_per_event"], figures
    assert figures["busy_cores"] > 0, figures
    assert 0 < figures["parts_cores"] <= (os.cpu_count() or 1), figures


def test_a_group_whose_process_is_gone_counts_nothing_for_it() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    window = cpu_share.Window({"gone": lambda: [child.pid]})
    window.start()
    child.wait(timeout=30)
    assert cpu_share.process_seconds(child.pid) is None
    assert window.stop(events=10)["gone_us_per_event"] == 0.0


def test_children_are_found_by_parent() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in cpu_share.children(os.getpid())
        assert child.pid in cpu_share.with_children(os.getpid())()
    finally:
        child.kill()
        child.wait()
