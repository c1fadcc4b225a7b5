"""transcript.txt: the whole transcript text, wrapped for reading."""

from __future__ import annotations

import re

WIDTH = 100

# Greedy lines of at most WIDTH characters that end before a space or the end of
# the text; a single word longer than WIDTH stands alone on its line (never split).
PLACEHOLDER_START = "[PHI: "
_GLUED = "[PHI:\x00"  # the same length, without the space (NUL never occurs in text)
_LINE = re.compile(rf"\S(?:.{{0,{WIDTH - 2}}}\S)?(?=\s|$)|\S+")


def render_plain_text(text: str) -> str:
    """Lines of at most 100 characters (a longer word stands alone), trailing newline.

    Silence (an empty or blank text) gives an empty document.
    """
    if PLACEHOLDER_START in text:  # never break a "[PHI: NAME]" placeholder across lines
        glued = text.replace(PLACEHOLDER_START, _GLUED)
        return render_plain_text(glued).replace(_GLUED, PLACEHOLDER_START)
    lines = _LINE.findall(text)
    return "\n".join(lines) + "\n" if lines else ""
