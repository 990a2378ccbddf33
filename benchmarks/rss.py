"""Peak resident memory of this process, for the benchmarks (Linux /proc; imported as `from rss import ...` by the
scripts next to it, which Python puts on sys.path when one is run as `python benchmarks/<script>.py`)."""

from __future__ import annotations

import resource
from pathlib import Path


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); a no-op where /proc/self/clear_refs cannot be written."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would include the parent's, Linux carries it over fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
