"""Clock formats shared by the documents."""

from __future__ import annotations

from functools import lru_cache


def clock(seconds: float) -> str:
    """Seconds as ``hh:mm:ss``, rounded down (the dialogue's turn stamps)."""
    whole = int(seconds) if seconds > 0 else 0
    return "%02d:%02d:%02d" % (whole // 3600, whole // 60 % 60, whole % 60)  # noqa: UP031 (as cue_clock)


@lru_cache(maxsize=1 << 16)  # the redacted captions repeat most of the times
def cue_clock(seconds: float) -> str:
    """Seconds as ``hh:mm:ss.mmm``, to the nearest millisecond (SRT swaps "." for ",")."""
    secs, ms = divmod(max(0, round(seconds * 1000)), 1000)
    # %-formatting: twice as fast as the f-string here, and this runs twice per cue.
    return "%02d:%02d:%02d.%03d" % (secs // 3600, secs // 60 % 60, secs % 60, ms)  # noqa: UP031
