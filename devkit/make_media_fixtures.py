"""Make the real-encoder media fixtures and the manifest of what ffprobe reads in them.

Run on a machine with the encoders (Debian: ``apt-get install ffmpeg lame flac opus-tools
vorbis-tools``)::

    python -m devkit.make_media_fixtures

It writes ``tests/fixtures/media/*`` and ``tests/fixtures/media/manifest.json``. The test
suite needs none of these tools: it reads the committed files and the manifest. Files
longer than the validator's prefix are cut to ``HEADER_BYTES`` (the manifest keeps the
real size); everything else is whole.

The manifest's facts come from ffprobe and from decoding with ffmpeg, never from the
validator: ``duration_s`` is the audio ffmpeg decodes (an MP3's encoder delay and padding
and AAC's priming removed), ``expect`` applies Transcribe Medical's documented limits to
those facts. ``unknown`` names facts the validator cannot see in the bytes it reads.
No AMR encoder ships in Debian: the two AMR fixtures come from ``devkit.media_samples``
and are checked by ffprobe like the rest.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.media_samples import amr_bytes

HEADER_BYTES = 65536  # pipeline.media.HEADER_BYTES: what the start-job Lambda reads
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "media"
TOOLS = ("ffmpeg", "ffprobe", "lame", "flac", "opusenc", "oggenc")
QUIET = ("-hide_banner", "-loglevel", "error", "-y")
# No version strings, random stream serials or UIDs: the same tools make the same bytes
BITEXACT = ("-fflags", "+bitexact", "-flags", "+bitexact")


@dataclass(frozen=True)
class Fixture:
    name: str  # file name in tests/fixtures/media
    covers: str  # what it is for, in a few words
    unknown: tuple[str, ...] = ()  # facts past the bytes the validator reads
    duration_tolerance_s: float = 0.002
    # ffprobe's duration, or the audio ffmpeg decodes where ffprobe counts what players drop
    # (an MP3's encoder delay and padding) or estimates from the bitrate (AMR)
    duration_from: str = "ffprobe"
    made_with: list[str] = field(default_factory=list)


def sine(rate: int, seconds: float, channels: int = 1) -> list[str]:
    source = f"sine=frequency=440:sample_rate={rate}:duration={seconds}"
    return ["-f", "lavfi", "-i", source, "-ac", str(channels)]


def video(seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size=32x32:rate=10:duration={seconds}"]


def run(command: list[str]) -> bytes:
    """Run one of TOOLS (found on PATH) with our own arguments; its standard output."""
    program = shutil.which(command[0]) or command[0]
    return subprocess.run([program, *command[1:]], check=True, capture_output=True).stdout  # noqa: S603


def ffmpeg(*arguments: str) -> list[str]:
    """An ffmpeg command; the last argument is the output."""
    return ["ffmpeg", *QUIET, *arguments[:-1], *BITEXACT, arguments[-1]]


def make_all(work: Path) -> list[tuple[Fixture, Path]]:
    """Every fixture's full file in ``work``, with the commands that made it."""
    made: list[tuple[Fixture, Path]] = []

    def add(fixture: Fixture, *commands: list[str]) -> Path:
        for command in commands:
            run(command)
        fixture.made_with.extend(
            " ".join(c.replace(str(work) + "/", "") for c in command) for command in commands
        )
        path = work / fixture.name
        made.append((fixture, path))
        return path

    def w(name: str) -> str:
        return str(work / name)

    # WAV: a baseline, and chunks that push "fmt " to or past the end of the prefix
    wav = add(
        Fixture("wav-16k-mono.wav", "16-bit PCM baseline"),
        ffmpeg(*sine(16000, 1.0), "-c:a", "pcm_s16le", w("wav-16k-mono.wav")),
    )
    for name, list_bytes, covers in (
        ("wav-list-100k-before-fmt.wav", 100_000, "100 KB LIST chunk before fmt"),
        ("wav-fmt-straddles-prefix.wav", HEADER_BYTES - 12 - 8 - 8 - 6, "fmt cut by the prefix"),
    ):
        (work / name).write_bytes(_with_list_before_fmt(wav.read_bytes(), list_bytes))
        unknown = ("sample_rate_hz", "channels", "duration_s")
        fixture = Fixture(name, covers, unknown)
        fixture.made_with.append(f"wav-16k-mono.wav with a {list_bytes}-byte LIST chunk first")
        made.append((fixture, work / name))

    add(
        Fixture("flac-16k-mono.flac", "FLAC baseline"),
        ["flac", "--silent", "--force", "-o", w("flac-16k-mono.flac"), str(wav)],
    )
    # MP3: CBR baseline; LAME's Info/Xing tag near the 0.5 s floor (delay and padding)
    add(
        Fixture("mp3-22k-mono-cbr.mp3", "MP3 CBR baseline (LAME)"),
        ffmpeg(*sine(22050, 2.0), w("src-22k.wav")),
        ["lame", "--silent", "-b", "32", "-m", "m", w("src-22k.wav"), w("mp3-22k-mono-cbr.mp3")],
    )
    add(
        Fixture(
            "mp3-lame-cbr-0.48s.mp3", "Info frames 0.58 s, audio 0.48 s", duration_from="decoded"
        ),
        ffmpeg(
            *sine(16000, 0.48), "-c:a", "libmp3lame", "-b:a", "32k", w("mp3-lame-cbr-0.48s.mp3")
        ),
    )
    add(
        Fixture(
            "mp3-lame-vbr-0.55s.mp3", "Xing frames with LAME delay/padding", duration_from="decoded"
        ),
        ffmpeg(*sine(16000, 0.55), w("src-055.wav")),
        ["lame", "--silent", "-V", "6", "-m", "m", w("src-055.wav"), w("mp3-lame-vbr-0.55s.mp3")],
    )
    # Ogg: Vorbis baseline, Opus named .opus, and a video-only Ogg
    add(
        Fixture("ogg-vorbis-16k-mono.ogg", "Ogg Vorbis baseline", ("duration_s",)),
        [
            "oggenc",
            "--quiet",
            "--serial",
            "1",
            "-q",
            "0",
            "-o",
            w("ogg-vorbis-16k-mono.ogg"),
            str(wav),
        ],
    )
    add(
        Fixture("opus-16k-source.opus", "Ogg Opus named .opus", ("duration_s",)),
        [
            "opusenc",
            "--quiet",
            "--serial",
            "1",
            "--bitrate",
            "16",
            str(wav),
            w("opus-16k-source.opus"),
        ],
    )
    add(
        Fixture("ogg-theora-video-only.ogg", "Ogg with no audio stream"),
        ffmpeg(
            *video(1.0), "-an", "-c:v", "libtheora", "-q:v", "1", w("ogg-theora-video-only.ogg")
        ),
    )
    # WebM: Opus from an 8 kHz source (SamplingFrequency 8000, decodes at 48 kHz)
    add(
        Fixture("webm-opus-8k-source.webm", "WebM Opus from 8 kHz input", (), 0.025),
        ffmpeg(*sine(8000, 1.0), "-c:a", "libopus", "-b:a", "12k", w("webm-opus-8k-source.webm")),
    )
    add(
        Fixture("webm-opus-48k-stereo.webm", "WebM Opus baseline", (), 0.025),
        ffmpeg(
            *sine(48000, 1.0, 2), "-c:a", "libopus", "-b:a", "24k", w("webm-opus-48k-stereo.webm")
        ),
    )
    add(
        Fixture("webm-vp8-video-only.webm", "WebM with no audio track"),
        ffmpeg(*video(1.0), "-an", "-c:v", "libvpx", "-b:v", "20k", w("webm-vp8-video-only.webm")),
    )
    # MP4/M4A: AAC with moov first (faststart), at limits ffprobe reads from esds
    for name, rate, channels, covers in (
        ("m4a-aac-16k-mono-faststart.m4a", 16000, 1, "AAC-LC baseline"),
        ("m4a-aac-8k-faststart.m4a", 8000, 1, "AAC at 8 kHz"),
        ("m4a-aac-96k-faststart.m4a", 96000, 1, "AAC at 96 kHz"),
        ("m4a-aac-6ch-faststart.m4a", 48000, 6, "6-channel AAC"),
    ):
        add(
            Fixture(name, covers),
            ffmpeg(
                *sine(rate, 1.0, channels),
                "-c:a",
                "aac",
                "-b:a",
                "24k",
                "-movflags",
                "+faststart",
                w(name),
            ),
        )
    add(
        Fixture(
            "m4a-aac-moov-at-end.m4a",
            "moov after 64 KB of media",
            ("sample_rate_hz", "channels", "duration_s"),
        ),
        ffmpeg(*sine(44100, 5.0, 2), "-c:a", "aac", "-b:a", "128k", w("m4a-aac-moov-at-end.m4a")),
    )
    add(
        Fixture("mp4-h264-video-only.mp4", "MP4 with no audio track"),
        ffmpeg(
            *video(1.0),
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-movflags",
            "+faststart",
            w("mp4-h264-video-only.mp4"),
        ),
    )
    add(
        Fixture("mp4-video-then-aac.mp4", "audio as the second track"),
        ffmpeg(
            *video(1.0),
            *sine(16000, 1.0),
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-b:a",
            "24k",
            "-movflags",
            "+faststart",
            w("mp4-video-then-aac.mp4"),
        ),
    )
    for name, wideband in (("amr-wb.amr", True), ("amr-nb.amr", False)):
        (work / name).write_bytes(amr_bytes(wideband=wideband, duration_s=1.0))
        fixture = Fixture(
            name, "AMR (devkit builder: no encoder in Debian)", duration_from="decoded"
        )
        fixture.made_with.append(f"devkit.media_samples.amr_bytes(wideband={wideband})")
        made.append((fixture, work / name))
    return made


def _with_list_before_fmt(wav: bytes, list_bytes: int) -> bytes:
    """The WAV with a LIST/INFO chunk of list_bytes body bytes ahead of its "fmt " chunk."""
    comment = b"x" * (list_bytes - 4 - 8)
    body = b"INFO" + b"ICMT" + struct.pack("<I", len(comment)) + comment
    chunk = b"LIST" + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)
    out = wav[:12] + chunk + wav[12:]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's streams and format, and the length of the audio ffmpeg decodes."""
    shown = run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)]
    )
    report = json.loads(shown)
    audio = [s for s in report["streams"] if s["codec_type"] == "audio"]
    facts: dict[str, Any] = {
        "format_name": report["format"]["format_name"],
        "reported_duration_s": float(report["format"].get("duration", "nan")),
        "stream_types": [s["codec_type"] for s in report["streams"]],
        "audio": None,
    }
    if audio:
        first = audio[0]
        rate, channels = int(first["sample_rate"]), int(first["channels"])
        decoded = run(ffmpeg("-i", str(path), "-map", "0:a:0", "-f", "s16le", "-"))
        facts["audio"] = {
            "codec": first["codec_name"],
            "sample_rate_hz": rate,
            "channels": channels,
            "decoded_duration_s": round(len(decoded) / 2 / channels / rate, 6),
        }
    return facts


def expectation(facts: dict[str, Any]) -> dict[str, Any]:
    """Transcribe Medical's documented limits applied to ffprobe's facts."""
    audio = facts["audio"]
    if audio is None:
        return {"verdict": "reject", "reason": "holds no audio track"}
    rate, channels = audio["sample_rate_hz"], audio["channels"]
    duration = audio["duration_s"]
    if rate < 16000:
        return {"verdict": "reject", "reason": f"sample rate {rate} Hz is below"}
    if rate > 48000:
        return {"verdict": "reject", "reason": f"sample rate {rate} Hz is above"}
    if channels > 2:
        return {"verdict": "reject", "reason": f"has {channels} audio channels"}
    if duration < 0.5:
        return {"verdict": "reject", "reason": "needs at least 0.5 s of audio"}
    return {"verdict": "accept"}


MEDIA_FORMATS = {
    "wav": "wav",
    "flac": "flac",
    "mp3": "mp3",
    "ogg": "ogg",
    "opus": "ogg",
    "webm": "webm",
    "amr": "amr",
}


def main() -> int:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as scratch:
        for fixture, path in make_all(Path(scratch)):
            data = path.read_bytes()
            facts = probe(path)
            if facts["audio"] is not None:  # the duration the validator must find
                facts["audio"]["duration_s"] = (
                    facts["audio"]["decoded_duration_s"]
                    if fixture.duration_from == "decoded"
                    else facts["reported_duration_s"]
                )
                facts["audio"]["duration_from"] = fixture.duration_from
            cut = len(data) > HEADER_BYTES
            (OUT / fixture.name).write_bytes(data[:HEADER_BYTES])
            ext = path.suffix
            brand = data[8:12]
            media_format = MEDIA_FORMATS.get(ext[1:]) or ("m4a" if brand == b"M4A " else "mp4")
            manifest.append(
                {
                    "file": fixture.name,
                    "extension": ext,
                    "covers": fixture.covers,
                    "size": len(data),
                    "truncated_to": HEADER_BYTES if cut else None,
                    "made_with": fixture.made_with,
                    "ffprobe": facts,
                    "expect": {
                        "media_format": media_format,
                        **expectation(facts),
                        "unknown": list(fixture.unknown),
                        "duration_tolerance_s": fixture.duration_tolerance_s,
                    },
                }
            )
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(manifest)} fixtures, {total} bytes in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
