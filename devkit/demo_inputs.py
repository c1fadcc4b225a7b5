"""The demo's own files: any paths (spaces, directories of audio), each turned into an
input key that keeps just enough of its path to stay unique among the run's files.

`make demo FILES=...` reaches Python through the shell, which splits an unquoted path with
spaces into words; a run of words that only exists as a path when joined back with spaces
is taken as that path (quoting it, `FILES='"my visit.wav"'`, works too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# What Transcribe Medical accepts (README "Deploying"): a directory contributes these.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".mp4", ".m4a", ".ogg", ".webm", ".amr"})
TYPE_FOLDERS = {"dictation": "dictation", "conversation": "conversation", None: "uploads"}


class DemoInputError(ValueError):
    """A path the demo cannot use; the message says which and what to do."""


@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str


def resolve_paths(words: list[str]) -> list[Path]:
    """Existing paths from the arguments, joining words that the shell split at spaces."""
    paths: list[Path] = []
    i = 0
    while i < len(words):
        for j in range(len(words), i, -1):  # the longest run of words that names a path
            candidate = Path(" ".join(words[i:j])).expanduser()
            if candidate.exists():
                paths.append(candidate)
                i = j
                break
        else:
            raise DemoInputError(
                f"{words[i]}: no such file or directory (a path with spaces can also be "
                "quoted: FILES='\"my visit.wav\"')"
            )
    return paths


def audio_files(paths: list[Path]) -> list[Path]:
    """Named files as they are; directories contribute their audio files, recursively."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                extensions = " ".join(sorted(AUDIO_EXTENSIONS))
                raise DemoInputError(f"{path}: no audio files ({extensions}) in this directory")
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(p.resolve() for p in files))


def unique_keys(files: list[Path], job_type: str | None = None) -> list[LocalFile]:
    """Keys under the type's folder (`dictation/`, `conversation/`, else `uploads/`) made of
    the shortest tail of each path that no other file of the run shares. Two keys of the
    same depth differ by construction, and keys of different depths have different
    numbers of `/`, so every key is unique."""
    if job_type not in TYPE_FOLDERS:
        raise DemoInputError(f"type {job_type!r}: choose dictation or conversation")
    folder = TYPE_FOLDERS[job_type]
    parts = [p.resolve().parts[1:] for p in files]  # without the root "/"
    keys = []
    for mine in parts:
        depth = 1
        while depth < len(mine) and any(
            other is not mine and other[-depth:] == mine[-depth:] for other in parts
        ):
            depth += 1
        keys.append(str(PurePosixPath(folder, *mine[-depth:])))
    return [LocalFile(path=path, key=key) for path, key in zip(files, keys, strict=True)]


def local_uploads(words: list[str], job_type: str | None = None) -> list[LocalFile]:
    return unique_keys(audio_files(resolve_paths(words)), job_type)
