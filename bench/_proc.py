"""What the kernel says a process has used: CPU seconds and resident memory (Linux /proc)."""

from __future__ import annotations

import os
from typing import Final

_TICKS: Final = os.sysconf("SC_CLK_TCK")
#: utime and stime are fields 14 and 15 of /proc/PID/stat; indices after the command's ")".
_UTIME: Final = 11
_STIME: Final = 12


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used so far (threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[_UTIME]) + int(fields[_STIME])) / _TICKS


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of ``pid`` now."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")
