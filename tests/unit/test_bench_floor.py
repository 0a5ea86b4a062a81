"""The /proc readings of the commands bench's `--floor`: a process's or a thread's CPU, and how
many times a thread slept (voluntary context switches)."""

from __future__ import annotations

import pytest

from scripts.bench.commands import stat_cpu, voluntary_switches

# A thread whose command name holds spaces and a parenthesis: the fields are counted after the last ")".
STAT = "4242 (uvicorn (x) y) S 1 4242 4242 0 -1 4194560 9077 0 0 0 250 75 0 0 20 0 9 0 123 1 2 3"

STATUS = """Name:\tpython
State:\tS (sleeping)
Tgid:\t4242
voluntary_ctxt_switches:\t3817
nonvoluntary_ctxt_switches:\t88
"""


def test_stat_cpu_adds_user_and_system_time_in_seconds() -> None:
    assert stat_cpu(STAT, 100) == pytest.approx(3.25)


def test_voluntary_switches_reads_its_own_line() -> None:
    assert voluntary_switches(STATUS) == 3817


def test_voluntary_switches_refuses_a_status_without_it() -> None:
    with pytest.raises(ValueError, match="voluntary_ctxt_switches"):
        voluntary_switches("Name:\tpython\nnonvoluntary_ctxt_switches:\t88\n")
