"""The demo's own files: any paths (spaces, directories of audio), each turned into an
input key that keeps just enough of its path to stay unique among the run's files.

`make demo FILES=...` reaches Python through the shell, which splits an unquoted path with
spaces into words; a run of words that only exists as a path when joined back with spaces
is taken as that path (quoting it, `FILES='"my visit.wav"'`, works too).

Integrator metadata (contract 6) for the uploads: the command line's values go to every
file; a sidecar `<audio file>.meta.json` next to a file (an object with any of the keys
patient-id, encounter-id, author, note-type) replaces them for that file, whole: a sidecar
describes its own recording, and mixing one patient's sidecar with the command line's
encounter could file the note under someone else's visit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# What Transcribe Medical accepts (README "Deploying"): a directory contributes these.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".mp4", ".m4a", ".ogg", ".webm", ".amr"})
TYPE_FOLDERS = {"dictation": "dictation", "conversation": "conversation", None: "uploads"}
# The S3 user metadata keys the start path reads (x-amz-meta-<key>; lambdas/pipeline/
# upload_metadata.py validates the values, and an upload with a bad one is REJECTED).
METADATA_KEYS = ("patient-id", "encounter-id", "author", "note-type")
SIDECAR_SUFFIX = ".meta.json"


class DemoInputError(ValueError):
    """A path the demo cannot use; the message says which and what to do."""


@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str
    metadata: Mapping[str, str] = field(default_factory=dict)


def checked_metadata(values: Mapping[str, object], where: str) -> dict[str, str]:
    """Metadata S3 can carry: known keys, text values, ASCII (S3 sends user metadata as HTTP
    headers). Values are PHI, so messages name the key and where it came from, never the value.
    The pipeline's own rules (lengths, characters, LOINC) stay the pipeline's to apply."""
    checked: dict[str, str] = {}
    for key, value in values.items():
        if key not in METADATA_KEYS:
            raise DemoInputError(
                f"{where}: unknown key {key!r}; allowed: {', '.join(METADATA_KEYS)}"
            )
        if not isinstance(value, str):
            raise DemoInputError(f"{where}: {key} must be text (in quotes)")
        if not value.isascii():
            raise DemoInputError(
                f"{where}: {key} holds a non-ASCII character, which S3 metadata cannot carry"
            )
        checked[key] = value
    return checked


def sidecar_of(audio: Path) -> Path:
    return audio.with_name(audio.name + SIDECAR_SUFFIX)


def read_sidecar(audio: Path) -> dict[str, str] | None:
    """The metadata in `<audio>.meta.json`, or None when there is no sidecar."""
    sidecar = sidecar_of(audio)
    if not sidecar.is_file():
        return None
    try:
        values = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DemoInputError(f"{sidecar}: not valid JSON ({type(error).__name__})") from None
    if not isinstance(values, dict):
        raise DemoInputError(
            f"{sidecar}: must be a JSON object, e.g. "
            '{"patient-id": "PAT-1", "encounter-id": "ENC-1", "author": "Dr A", '
            '"note-type": "11506-3"}'
        )
    return checked_metadata(values, str(sidecar))


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


def local_uploads(
    words: list[str], job_type: str | None = None, metadata: Mapping[str, str] | None = None
) -> list[LocalFile]:
    """The run's files with their keys and metadata (a sidecar's, else the command line's)."""
    common = checked_metadata(metadata or {}, "the command line")
    files = unique_keys(audio_files(resolve_paths(words)), job_type)
    return [
        LocalFile(path=f.path, key=f.key, metadata=_or(read_sidecar(f.path), common)) for f in files
    ]


def _or(own: dict[str, str] | None, common: dict[str, str]) -> dict[str, str]:
    return dict(common) if own is None else own
