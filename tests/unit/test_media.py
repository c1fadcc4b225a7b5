"""Media header inspection (pipeline.media) and the sample factory (devkit.media_samples).

Pure Python, no AWS. The samples are checked independently here (a bit-by-bit FLAC decoder,
bitwise CRCs against published check values, the stdlib ``wave`` reader), so a bug in the
factory cannot hide a bug in the inspector.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import inspect
import io
import random
import struct
import wave
import zipfile

import pytest

from devkit.media_samples import (
    KSDATAFORMAT_TAIL,
    _utf8_coded,
    aac_config,
    amr_bytes,
    flac_bytes,
    id3_tag,
    m4a_header_bytes,
    mp3_bytes,
    mp4_audio_track,
    mp4_header_bytes,
    mp4_video_track,
    ogg_crc,
    ogg_opus_header_bytes,
    ogg_page,
    ogg_vorbis_header_bytes,
    opus_head,
    pcm_samples,
    png_bytes,
    riff_chunk,
    text_bytes,
    wav_bytes,
    wav_header_bytes,
    webm_header_bytes,
)
from pipeline.media import (
    EXTENSION_FORMATS,
    HEADER_BYTES,
    MediaInfo,
    MediaRejected,
    _inspect_content,  # the parsers without inspect_media's safety net, for fuzzing
    inspect_media,
)

SUPPORTED = ".wav, .flac, .mp3, .mp4, .m4a, .ogg, .opus, .webm or .amr"


def inspect_bytes(ext: str, data: bytes, size: int | None = None) -> MediaInfo:
    """What the start-job Lambda does: the first HEADER_BYTES and the object's size."""
    return inspect_media(
        extension=ext, header=data[:HEADER_BYTES], size=len(data) if size is None else size
    )


def reason_for(ext: str, data: bytes, size: int | None = None) -> str:
    with pytest.raises(MediaRejected) as caught:
        inspect_bytes(ext, data, size)
    reason = caught.value.reason
    # Every reason: one line a person reads, no exception jargon
    assert reason == str(caught.value)
    assert "\n" not in reason
    assert len(reason) < 300
    assert reason.count(". ") <= 1
    for jargon in ("Error", "struct", "Traceback", "None", "index", "exception"):
        assert jargon not in reason
    return reason


def patched(data: bytes, offset: int, layout: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(layout, out, offset, *values)
    return bytes(out)


# --- WAV -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_16_bit_pcm_wav_is_accepted_with_its_format(rate, channels):
    info = inspect_bytes(".wav", wav_bytes(sample_rate=rate, channels=channels, duration_s=0.75))
    assert info == MediaInfo("wav", rate, channels, 16, 0.75)


def test_wav_chunks_before_fmt_are_skipped_with_their_pad_byte():
    # Given a LIST chunk of odd size before "fmt " (it is followed by a pad byte)
    data = wav_bytes(leading_chunks=[(b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00")])
    assert data[12:16] == b"LIST"
    info = inspect_bytes(".wav", data)
    assert (info.sample_rate_hz, info.channels, info.duration_s) == (16000, 1, 1.0)


def test_wave_format_extensible_pcm_is_accepted():
    data = wav_bytes(format_tag=0xFFFE, channels=2, sample_rate=48000)
    assert data[20:22] == b"\xfe\xff"
    assert inspect_bytes(".wav", data) == MediaInfo("wav", 48000, 2, 16, 1.0)


def test_wave_format_extensible_float_is_rejected_as_not_16_bit_pcm():
    data = wav_bytes(format_tag=0xFFFE, subformat=3, bits=32)
    assert "this file is 32-bit floating point" in reason_for(".wav", data)


def test_extensible_wav_with_an_unknown_subformat_is_rejected():
    data = wav_bytes(format_tag=0xFFFE)
    sub = data.index(b"\x01\x00" + KSDATAFORMAT_TAIL)
    data = data[: sub + 2] + bytes(14) + data[sub + 16 :]
    assert "unknown encoding" in reason_for(".wav", data)


@pytest.mark.parametrize("rate", [8000, 11025, 12000])
def test_wav_below_16_khz_is_rejected(rate):
    reason = reason_for(".wav", wav_bytes(sample_rate=rate))
    assert reason == (
        f"sample rate {rate} Hz is below the 16000 Hz that Transcribe Medical requires; "
        "record or resample at 16 kHz or higher"
    )


def test_wav_above_48_khz_is_rejected():
    reason = reason_for(".wav", wav_bytes(sample_rate=96000, duration_s=0.6))
    assert "96000 Hz is above the 48000 Hz" in reason
    assert "resample it to 48 kHz or lower" in reason


@pytest.mark.parametrize(
    ("bits", "format_tag", "described"),
    [
        (8, 1, "8-bit PCM"),
        (24, 1, "24-bit PCM"),
        (32, 1, "32-bit PCM"),
        (32, 3, "32-bit floating point"),
        (64, 3, "64-bit floating point"),
    ],
)
def test_wav_that_is_not_16_bit_pcm_is_rejected(bits, format_tag, described):
    reason = reason_for(".wav", wav_bytes(bits=bits, format_tag=format_tag))
    assert reason == (
        f"WAV audio must be 16-bit PCM; this file is {described}. "
        "Re-export it as 16-bit PCM WAV or as FLAC"
    )


@pytest.mark.parametrize(
    ("tag", "described"),
    [(6, "8-bit A-law"), (7, "8-bit mu-law"), (0x11, "IMA ADPCM-compressed"), (0x1234, "0x1234")],
)
def test_compressed_wav_is_rejected_naming_its_encoding(tag, described):
    data = wav_header_bytes(bits=8, data_bytes=16000) + bytes(16000)
    data = patched(data, 20, "<H", tag)
    assert described in reason_for(".wav", data)


def test_wav_with_more_than_two_channels_is_rejected():
    reason = reason_for(".wav", wav_bytes(channels=3))
    assert reason == (
        "the recording has 3 audio channels but Transcribe Medical accepts at most 2; "
        "downmix it to mono or stereo"
    )


def test_wav_shorter_than_half_a_second_is_rejected():
    reason = reason_for(".wav", wav_bytes(duration_s=0.2))
    assert reason == (
        "the recording is 0.2 s long; Transcribe Medical needs at least 0.5 s of audio"
    )


def test_a_duration_just_short_of_half_a_second_never_reads_as_0_5():
    assert "0.49 s long" in reason_for(".wav", wav_bytes(duration_s=0.4999))
    assert inspect_bytes(".wav", wav_bytes(duration_s=0.5)).duration_s == 0.5


@pytest.mark.parametrize(
    ("seconds", "shown"), [(14_400, "4 h"), (14_401, "4 h"), (15_000, "4 h 10 min")]
)
def test_wav_of_four_hours_or_more_is_rejected_without_reading_it(seconds, shown):
    # Given only the header of a long recording: the size says how long it is
    header = wav_header_bytes(data_bytes=32000 * seconds)
    reason = reason_for(".wav", header, size=len(header) + 32000 * seconds)
    assert reason == (
        f"the recording is {shown} long but Transcribe Medical accepts recordings under 4 hours; "
        "split it into parts under 4 hours"
    )


def test_wav_just_under_four_hours_is_accepted():
    header = wav_header_bytes(data_bytes=32000 * 14_399)
    info = inspect_bytes(".wav", header, size=len(header) + 32000 * 14_399)
    assert info.duration_s == 14_399


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_streaming_writers_data_size_means_until_end_of_file(declared):
    data = wav_bytes(duration_s=2.0)
    data = patched(data, data.index(b"data") + 4, "<I", declared)
    assert inspect_bytes(".wav", data).duration_s == 2.0


def test_duration_counts_only_bytes_that_exist_when_the_header_overstates_them():
    # An upload cut short: the header still claims 10 s, the file holds 1 s
    header = wav_header_bytes(data_bytes=320_000)
    info = inspect_bytes(".wav", header + bytes(32000))
    assert info.duration_s == 1.0


def test_rf64_wav_takes_its_data_size_from_ds64():
    ds64 = struct.pack("<QQQI", 0, 64000, 32000, 0)
    data = wav_bytes(duration_s=2.0, leading_chunks=[(b"ds64", ds64)])
    data = b"RF64" + b"\xff\xff\xff\xff" + data[8:]
    data = patched(data, data.index(b"data") + 4, "<I", 0xFFFFFFFF)
    assert inspect_bytes(".wav", data + bytes(32000)).duration_s == 2.0


def test_wav_whose_audio_starts_past_the_header_bytes_has_unknown_duration():
    # fmt first, then a 70 KB chunk: the data chunk lies past what the Lambda reads
    data = wav_header_bytes(data_bytes=32000)
    fmt_end = 12 + 8 + 16
    data = data[:fmt_end] + riff_chunk(b"JUNK", bytes(70_000)) + data[fmt_end:] + bytes(32000)
    assert inspect_bytes(".wav", data) == MediaInfo("wav", 16000, 1, 16, None)


def test_wav_whose_fmt_lies_past_the_header_bytes_is_accepted_best_effort():
    # RIFF chunks come in any order: a big chunk first pushes "fmt " past the bytes read
    data = wav_bytes(leading_chunks=[(b"JUNK", bytes(70_000))])
    assert inspect_bytes(".wav", data) == MediaInfo("wav")


def test_wav_whose_fmt_straddles_the_end_of_the_header_bytes_is_accepted_best_effort():
    data = wav_bytes(leading_chunks=[(b"JUNK", bytes(HEADER_BYTES - 12 - 8 - 8 - 6))])
    assert data.index(b"fmt ") == HEADER_BYTES - 6 - 8
    assert inspect_bytes(".wav", data) == MediaInfo("wav")


def test_wav_that_ends_inside_its_fmt_chunk_is_still_corrupt():
    data = wav_bytes()[:30]
    assert "WAV header is truncated or corrupt" in reason_for(".wav", data)


def test_wav_whose_chunks_end_without_fmt_is_rejected():
    data = wav_bytes(leading_chunks=[(b"JUNK", bytes(70_000))])
    fmt_at = data.index(b"fmt ")
    reason = reason_for(".wav", data[:fmt_at], size=fmt_at)
    assert reason.startswith("the WAV header is truncated or corrupt")
    assert "audio format" in reason


def test_wav_without_a_data_chunk_is_rejected():
    data = wav_header_bytes(data_bytes=0)[:-8]
    assert "contains no audio data" in reason_for(".wav", data)


@pytest.mark.parametrize(
    ("offset", "layout", "value", "detail"),
    [
        (28, "<I", 12345, "byte rate does not match"),  # byte rate
        (32, "<H", 4, "byte rate does not match"),  # block align
        (22, "<H", 0, "zero channels"),
        (24, "<I", 0, "sample rate of 0 Hz"),
        (34, "<H", 0, "0 bits per sample"),
        (16, "<I", 14, "format description is too short"),  # fmt chunk size
    ],
)
def test_wav_with_a_lying_header_is_rejected(offset, layout, value, detail):
    data = patched(wav_bytes(), offset, layout, value)
    reason = reason_for(".wav", data)
    assert reason.startswith("the WAV header is truncated or corrupt (")
    assert detail in reason
    assert reason.endswith("re-export the recording or upload it again")


def test_truncated_wav_is_rejected_as_truncated():
    for cut in (13, 20, 30, 40):
        assert "WAV header is truncated or corrupt" in reason_for(".wav", wav_bytes()[:cut])


# --- content decides, not the name ---------------------------------------------------------


def test_png_named_wav_is_rejected_saying_what_it_is():
    assert reason_for(".wav", png_bytes()) == (
        "the file is named .wav but its content is a PNG image, not audio; "
        "upload WAV, FLAC, MP3, MP4/M4A, OGG, WebM or AMR audio"
    )


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("notes.txt", (2020, 1, 1, 0, 0, 0)), "hello")
    return out.getvalue()


NOT_AUDIO = [
    ("jpeg", bytes.fromhex("ffd8ffe000104a464946") + bytes(100), "a JPEG image"),
    ("gif", b"GIF89a" + bytes(100), "a GIF image"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document"),
    ("zip", _zip(), "a ZIP archive"),
    ("gzip", gzip.compress(b"x" * 100, mtime=0), "a gzip archive"),
    ("json", b'{"patient": "x", "notes": []}', "JSON text"),
    ("html", b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML page"),
    ("xml", b'<?xml version="1.0"?><a/>', "an XML document"),
    ("utf16", "hello".encode("utf-16"), "text (UTF-16)"),
    ("webp", b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(20), "a WebP image"),
    (
        "heic",
        m4a_header_bytes(major_brand=b"heic", compatible_brands=[b"mif1"]),
        "a HEIF/AVIF image",
    ),
    ("midi", b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0", "a MIDI file"),
]


@pytest.mark.parametrize(("name", "data", "described"), NOT_AUDIO, ids=[n[0] for n in NOT_AUDIO])
@pytest.mark.parametrize("ext", [".wav", ".mp3", ".m4a"])
def test_known_non_audio_content_is_rejected_saying_what_it_is(name, data, described, ext):
    reason = reason_for(ext, data)
    assert reason.startswith(f"the file is named {ext} but its content is {described}")
    assert reason.endswith(", not audio; upload WAV, FLAC, MP3, MP4/M4A, OGG, WebM or AMR audio")


def test_text_named_mp3_is_rejected_as_plain_text():
    reason = reason_for(".mp3", text_bytes())
    assert reason.startswith("the file is named .mp3 but its content is plain text, not audio")
    # a UTF-8 character cut by the header's end is still text
    assert "plain text" in reason_for(".mp3", "é".encode() * 40_000)


UNSUPPORTED = [
    ("aiff", b"FORM\x00\x00\x10\x00AIFFCOMM" + bytes(30), "AIFF audio"),
    ("adts", bytes.fromhex("fff15080") + bytes(200), "raw AAC (ADTS) audio"),
    ("mp2", bytes.fromhex("fffd9400") + bytes(500), "MPEG layer II audio (MP2)"),
    ("avi", b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(30), "an AVI video"),
    ("caf", b"caff\x00\x01\x00\x00" + bytes(30), "Core Audio (CAF) audio"),
    ("wma", bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(30), "Windows Media"),
    ("rifx", b"RIFX\x00\x00\x10\x00WAVEfmt " + bytes(30), "big-endian WAV"),
]


@pytest.mark.parametrize(
    ("name", "data", "described"), UNSUPPORTED, ids=[n[0] for n in UNSUPPORTED]
)
def test_audio_in_an_unsupported_format_is_rejected_with_a_conversion_hint(name, data, described):
    reason = reason_for(".mp3", data)
    assert reason.startswith(f"the file is named .mp3 but its content is {described}")
    assert "which Transcribe Medical does not accept; " in reason
    assert "WAV" in reason.split("; ", 1)[1]


def test_unrecognised_content_is_rejected():
    reason = reason_for(".ogg", bytes(range(256)) * 4)
    assert reason == (
        "the file is named .ogg but its content is not a recognised audio format; "
        "upload WAV, FLAC, MP3, MP4/M4A, OGG, WebM or AMR audio"
    )


@pytest.mark.parametrize(
    ("ext", "data", "media_format"),
    [
        (".wav", flac_bytes(), "flac"),
        (".flac", wav_bytes(), "wav"),
        (".m4a", mp3_bytes(), "mp3"),
        (".mp3", ogg_opus_header_bytes(), "ogg"),
        (".mp4", m4a_header_bytes(), "m4a"),
        (".m4a", mp4_header_bytes(), "mp4"),
        (".webm", amr_bytes(wideband=True), "amr"),
    ],
)
def test_supported_audio_under_another_supported_extension_is_accepted_as_its_content(
    ext, data, media_format
):
    assert inspect_bytes(ext, data).media_format == media_format


# --- extension and size --------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".xyz", ".txt", ".aiff", ".aac"])
def test_unknown_extension_is_rejected_listing_the_supported_ones(ext):
    reason = reason_for(ext, wav_bytes())
    assert reason == (
        f"files ending in {ext} are not accepted; convert the recording to a supported audio "
        f"format and name it with one of {SUPPORTED}"
    )


def test_a_long_unknown_extension_is_not_echoed_as_it_may_be_part_of_a_name():
    # "Jane.Smithson" yields the "extension" .smithson: reasons must not carry key text
    reason = reason_for(".smithson", wav_bytes())
    assert "smithson" not in reason.lower()
    assert reason.startswith("the file's extension is not accepted")


def test_missing_extension_is_rejected():
    assert reason_for("", wav_bytes()) == (
        f"the file name has no extension; name it with one of {SUPPORTED}"
    )


def test_extension_case_and_dot_are_forgiven():
    assert inspect_media(extension=".WAV", header=wav_bytes(), size=32044).media_format == "wav"
    assert inspect_media(extension="flac", header=flac_bytes(), size=1).media_format == "flac"


def test_empty_file_is_rejected():
    assert reason_for(".wav", b"") == "the file is empty (0 bytes); upload the recording again"


def test_unreadable_start_is_rejected():
    assert "could not be read" in reason_for(".wav", b"", size=1000)


@pytest.mark.parametrize("size", [2 * 1024**3, 2 * 1024**3 + 1, 5 * 1024**3])
def test_files_of_2_gb_or_more_are_rejected_without_reading_them(size):
    reason = reason_for(".wav", wav_bytes()[:44], size=size)
    assert "GB but Transcribe Medical accepts files under 2 GB" in reason
    assert "compress it" in reason


def test_a_file_just_under_2_gb_is_accepted():
    size = 2 * 1024**3 - 1
    header = wav_header_bytes(sample_rate=48000, channels=2, data_bytes=size - 44)
    info = inspect_bytes(".wav", header, size=size)
    assert info.duration_s == pytest.approx((size - 44) / 192000)


# --- FLAC ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "channels", "bits"), [(16000, 1, 16), (44100, 2, 24), (48000, 2, 16)]
)
def test_valid_flac_is_accepted_with_its_format(rate, channels, bits):
    data = flac_bytes(sample_rate=rate, channels=channels, bits=bits, duration_s=0.6)
    assert inspect_bytes(".flac", data) == MediaInfo("flac", rate, channels, bits, 0.6)


@pytest.mark.parametrize("bits", [8, 32])
def test_flac_at_other_bit_depths_is_accepted(bits):
    # Transcribe documents no FLAC bit-depth limit (only WAV must be 16-bit): let it decide
    assert inspect_bytes(".flac", flac_bytes(bits=bits, duration_s=0.6)).bits_per_sample == bits


def test_flac_at_8_khz_is_rejected():
    assert "sample rate 8000 Hz is below" in reason_for(".flac", flac_bytes(sample_rate=8000))


def test_flac_shorter_than_half_a_second_is_rejected():
    assert "the recording is 0.3 s long" in reason_for(".flac", flac_bytes(duration_s=0.3))


def test_flac_with_unknown_total_samples_has_unknown_duration():
    info = inspect_bytes(".flac", flac_bytes(duration_s=0.3, total_samples_known=False))
    assert info == MediaInfo("flac", 16000, 1, 16, None)


def test_flac_named_wav_is_accepted_as_flac():
    assert inspect_bytes(".wav", flac_bytes()) == MediaInfo("flac", 16000, 1, 16, 1.0)


def test_flac_after_an_id3_tag_is_accepted_as_flac():
    assert inspect_bytes(".flac", id3_tag() + flac_bytes()).media_format == "flac"


def test_flac_without_streaminfo_first_is_rejected():
    data = bytearray(flac_bytes())
    data[4] = 0x84  # a VORBIS_COMMENT block where STREAMINFO must be
    assert "FLAC header is truncated or corrupt" in reason_for(".flac", bytes(data))


# --- MP3 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("id3", [False, True])
def test_mp3_is_accepted_with_and_without_an_id3_tag(id3):
    info = inspect_bytes(".mp3", mp3_bytes(id3=id3, id3_padding=1000))
    assert (info.media_format, info.sample_rate_hz, info.channels) == ("mp3", 44100, 2)
    assert info.duration_s == pytest.approx(39 * 1152 / 44100, abs=1e-3)  # frames covering 1 s


def test_mpeg_2_mono_mp3_at_22_khz_is_accepted():
    info = inspect_bytes(".mp3", mp3_bytes(sample_rate=22050, bitrate_kbps=32, channels=1))
    assert (info.sample_rate_hz, info.channels) == (22050, 1)
    assert info.duration_s == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("rate", [8000, 11025])
def test_mpeg_2_5_mp3_below_16_khz_is_rejected(rate):
    data = mp3_bytes(sample_rate=rate, bitrate_kbps=8, channels=1)
    assert f"sample rate {rate} Hz is below the 16000 Hz" in reason_for(".mp3", data)


@pytest.mark.parametrize("tag", ["Xing", "Info", "VBRI"])
def test_mp3_duration_comes_from_its_vbr_header_when_present(tag):
    # Given only the first 4 KB of a 20-minute file: the tag frame knows the frame count
    data = mp3_bytes(vbr_header=tag, duration_s=1200)
    info = inspect_bytes(".mp3", data[:4096], size=len(data))
    assert info.duration_s == pytest.approx(1200, abs=0.03)


@pytest.mark.parametrize("tag", ["Xing", "Info"])
def test_mp3_duration_drops_the_lame_encoder_delay_and_padding(tag):
    # Given 16 frames of 576 samples (0.576 s) of which LAME added 576 + 960 at the ends
    plain = mp3_bytes(sample_rate=16000, bitrate_kbps=32, channels=1, vbr_header=tag,
                      duration_s=0.55)  # fmt: skip
    assert inspect_bytes(".mp3", plain).duration_s == pytest.approx(0.576)
    lame = mp3_bytes(sample_rate=16000, bitrate_kbps=32, channels=1, vbr_header=tag,
                     duration_s=0.55, lame_delay_padding=(576, 960))  # fmt: skip
    assert reason_for(".mp3", lame) == (
        "the recording is 0.48 s long; Transcribe Medical needs at least 0.5 s of audio"
    )


def test_mp3_with_changing_bitrates_and_no_vbr_header_has_unknown_duration():
    data = mp3_bytes() + mp3_bytes(bitrate_kbps=320)
    assert inspect_bytes(".mp3", data).duration_s is None


def test_mp3_with_a_tag_larger_than_the_header_bytes_is_accepted_with_unknowns():
    data = mp3_bytes(id3=True, id3_padding=100_000)
    assert inspect_bytes(".mp3", data) == MediaInfo("mp3")


def test_mp3_after_junk_is_found_when_two_frames_chain():
    data = id3_tag() + b"APETAGEX" + bytes(range(1, 200)) + mp3_bytes()
    assert inspect_bytes(".mp3", data).sample_rate_hz == 44100


def test_an_id3_tag_with_nothing_after_it_is_rejected():
    tag = id3_tag()
    assert "holds only a tag and no audio" in reason_for(".mp3", tag)
    assert "no MP3 audio follows its tag" in reason_for(".mp3", tag + bytes(range(1, 250)) * 4)


def test_a_corrupt_id3_tag_is_rejected():
    data = b"ID3\x03\x00\x00\x80\x80\x80\x80" + mp3_bytes()
    assert "its ID3 tag is damaged" in reason_for(".mp3", data)


# --- OGG, MP4/M4A, WebM, AMR ---------------------------------------------------------------


def test_ogg_opus_reports_48_khz_whatever_the_input_rate():
    data = ogg_opus_header_bytes(channels=2, input_rate=8000)
    assert inspect_bytes(".ogg", data) == MediaInfo("ogg", 48000, 2, None, None)


def test_opus_files_are_accepted_as_ogg():
    assert inspect_bytes(".opus", ogg_opus_header_bytes()) == MediaInfo("ogg", 48000, 2)


THEORA = b"\x80theora\x03\x02\x01" + bytes(33)
SKELETON = b"fishead\x00" + bytes(56)


def test_ogg_with_only_a_video_stream_is_rejected():
    data = ogg_page(THEORA, sequence=0, header_type=0x02) + ogg_page(b"\x81theora", sequence=1)
    reason = reason_for(".ogg", data)
    assert reason == (
        "the file is named .ogg but this Ogg file holds no audio track (only video); "
        "export the recording's sound as FLAC, MP3 or 16-bit PCM WAV"
    )


def test_ogg_audio_after_other_streams_is_found():
    # Given a Skeleton index, a Theora video and then an Opus stream, each opening its stream
    data = b"".join(
        ogg_page(packet, sequence=0, header_type=0x02, serial=serial)
        for serial, packet in enumerate([SKELETON, THEORA, opus_head(channels=1)])
    ) + ogg_page(b"\x81theora", sequence=1, serial=1)
    assert inspect_bytes(".ogg", data) == MediaInfo("ogg", 48000, 1)


def test_ogg_whose_stream_headers_outlast_the_header_bytes_is_accepted_best_effort():
    video = ogg_page(THEORA, sequence=0, header_type=0x02)
    filler = b"".join(  # an Ogg page holds at most 255 x 255 bytes
        ogg_page(THEORA + bytes(40_000), sequence=0, header_type=0x02, serial=serial)
        for serial in (8, 9)
    )
    data = video + filler + ogg_page(opus_head(), sequence=0, header_type=0x02, serial=2)
    assert inspect_bytes(".ogg", data) == MediaInfo("ogg")


def test_ogg_opus_with_six_channels_is_rejected():
    assert "6 audio channels" in reason_for(".ogg", ogg_opus_header_bytes(channels=6))


def test_ogg_vorbis_reports_its_rate_and_channels():
    assert inspect_bytes(".ogg", ogg_vorbis_header_bytes()) == MediaInfo("ogg", 44100, 2)
    data = ogg_vorbis_header_bytes(sample_rate=8000)
    assert "8000 Hz is below" in reason_for(".ogg", data)


def test_flac_in_ogg_reports_its_streaminfo():
    flac = flac_bytes(sample_rate=32000, channels=2, duration_s=0.75)
    packet = b"\x7fFLAC\x01\x00\x00\x01fLaC" + flac[4:42]
    data = ogg_page(packet, sequence=0, header_type=0x02)
    assert inspect_bytes(".ogg", data) == MediaInfo("ogg", 32000, 2, 16, 0.75)


def test_m4a_and_mp4_are_told_apart_by_brand():
    assert inspect_bytes(".m4a", m4a_header_bytes()) == MediaInfo("m4a", 44100, 2, None, 1.0)
    assert inspect_bytes(".mp4", mp4_header_bytes()) == MediaInfo("mp4", 44100, 2, None, 1.0)
    # an M4A compatible brand under a generic major brand is still M4A
    data = m4a_header_bytes(major_brand=b"mp42", compatible_brands=[b"mp42", b"M4A "])
    assert inspect_bytes(".mp4", data).media_format == "m4a"


def test_mp4_duration_rules_apply_and_fragmented_files_have_none():
    assert "0.3 s long" in reason_for(".m4a", m4a_header_bytes(duration_s=0.3))
    assert inspect_bytes(".mp4", mp4_header_bytes(duration_s=None)).duration_s is None


def test_mp4_audio_track_gives_rate_channels_and_its_own_duration():
    # Given a video track of 3 s first and an audio track of 2 s at 16 kHz mono
    tracks = [mp4_video_track(duration_s=3.0), mp4_audio_track(sample_rate=16000, channels=1,
              duration_s=2.0)]  # fmt: skip
    data = mp4_header_bytes(duration_s=3.0, tracks=tracks)
    assert inspect_bytes(".mp4", data) == MediaInfo("mp4", 16000, 1, None, 2.0)


@pytest.mark.parametrize(
    ("config", "rate", "channels"),
    [
        (aac_config(sample_rate=20000, channel_config=1), 20000, 1),  # the explicit frequency
        (aac_config(sample_rate=24000, channel_config=2, sbr_rate=48000), 48000, 2),
        (aac_config(sample_rate=8000, channel_config=1, sbr_rate=16000), 16000, 1),
        (
            aac_config(
                sample_rate=22050, channel_config=1, sbr_rate=44100, signalling="compatible"
            ),
            44100,
            1,
        ),
        (
            aac_config(sample_rate=24000, channel_config=1, sbr_rate=48000, parametric_stereo=True),
            48000,
            2,
        ),
        (
            aac_config(
                sample_rate=24000,
                channel_config=1,
                sbr_rate=48000,
                parametric_stereo=True,
                signalling="compatible",
            ),
            48000,
            2,
        ),
    ],
    ids=["escape", "he-aac", "he-aac-8k-core", "sbr-sync-extension", "he-aac-v2", "ps-sync"],
)
def test_aac_config_gives_the_rate_and_channels_a_decoder_outputs(config, rate, channels):
    # The sample entry says 44.1 kHz stereo; the AudioSpecificConfig is authoritative
    track = mp4_audio_track(sample_rate=44100, channels=2, config=config)
    info = inspect_bytes(".m4a", m4a_header_bytes(tracks=[track]))
    assert (info.sample_rate_hz, info.channels) == (rate, channels)


def test_aac_with_implicit_sbr_reads_as_its_core_rate():
    # An AAC-LC config whose frames carry SBR: only decoding shows it (documented choice)
    track = mp4_audio_track(config=aac_config(sample_rate=24000, channel_config=2))
    assert inspect_bytes(".m4a", m4a_header_bytes(tracks=[track])).sample_rate_hz == 24000


@pytest.mark.parametrize(
    ("rate", "channels", "said"),
    [
        (8000, 1, "8000 Hz is below"),
        (96000, 2, "96000 Hz is above"),
        (48000, 6, "6 audio channels"),
    ],
)
def test_aac_outside_the_limits_is_rejected(rate, channels, said):
    track = mp4_audio_track(sample_rate=rate, channels=channels)
    assert said in reason_for(".m4a", m4a_header_bytes(tracks=[track]))


@pytest.mark.parametrize(
    ("tracks", "only"), [([mp4_video_track()], "only video"), ([], "only metadata")]
)
def test_mp4_without_an_audio_track_is_rejected(tracks, only):
    reason = reason_for(".mp4", mp4_header_bytes(tracks=tracks))
    assert reason.startswith("the file is named .mp4 but this MP4 file holds no audio track")
    assert only in reason


def test_mp4_whose_moov_lies_past_the_header_bytes_is_accepted_with_its_brand_only():
    data = m4a_header_bytes(tracks=[mp4_audio_track(sample_rate=8000)])
    ftyp_end = data.index(b"moov") - 4
    moov, mdat = data[ftyp_end:-8], iso_box_of(b"mdat", bytes(70_000))
    assert inspect_bytes(".m4a", data[:ftyp_end] + mdat + moov) == MediaInfo("m4a")


def test_mp4_whose_audio_track_is_cut_by_the_header_bytes_keeps_the_movie_duration():
    padding = mp4_video_track(duration_s=1.0) + iso_box_of(b"free", bytes(70_000))
    data = m4a_header_bytes(tracks=[padding, mp4_audio_track(sample_rate=8000)])
    assert inspect_bytes(".m4a", data) == MediaInfo("m4a", duration_s=1.0)


def iso_box_of(box_type: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + box_type + body


def test_copy_protected_itunes_audio_is_rejected():
    data = m4a_header_bytes(major_brand=b"M4P ", compatible_brands=[b"M4P "])
    assert "copy-protected" in reason_for(".m4a", data)


def test_webm_is_accepted_with_its_track_and_duration():
    assert inspect_bytes(".webm", webm_header_bytes(duration_s=90.0, channels=2)) == MediaInfo(
        "webm", 48000, 2, None, 90.0
    )


def test_webm_opus_decodes_at_48_khz_whatever_its_sampling_frequency_says():
    # ffmpeg writes the encoder's input rate (8000) into SamplingFrequency
    assert inspect_bytes(".webm", webm_header_bytes(sample_rate=8000.0)).sample_rate_hz == 48000


def test_webm_with_only_a_video_track_is_rejected():
    data = webm_header_bytes(codec_id="V_VP8").replace(b"\x83\x81\x02", b"\x83\x81\x01")
    assert "holds no audio track (only video)" in reason_for(".webm", data)


def test_webm_from_a_live_recorder_has_unknown_duration():
    info = inspect_bytes(".webm", webm_header_bytes(duration_s=None))
    assert info == MediaInfo("webm", 48000, 1, None, None)


def test_webm_rules_apply_to_what_its_header_says():
    assert "under 4 hours" in reason_for(".webm", webm_header_bytes(duration_s=5 * 3600.0))
    data = webm_header_bytes(codec_id="A_VORBIS", sample_rate=8000.0)
    assert "8000 Hz is below" in reason_for(".webm", data)


def test_matroska_is_rejected_with_a_remux_hint():
    reason = reason_for(".webm", webm_header_bytes(doc_type="matroska"))
    assert reason == (
        "the file is named .webm but its content is Matroska (MKV/MKA) media, which "
        "Transcribe Medical does not accept; remux it to WebM or convert it to FLAC, MP3 "
        "or 16-bit PCM WAV"
    )


def test_amr_narrow_band_is_rejected_for_its_8_khz_rate():
    assert "sample rate 8000 Hz is below" in reason_for(".amr", amr_bytes(wideband=False))


def test_amr_wide_band_is_accepted():
    info = inspect_bytes(".amr", amr_bytes(wideband=True, duration_s=2.0))
    assert info == MediaInfo("amr", 16000, 1, None, 2.0)


# --- robustness ----------------------------------------------------------------------------

VALID_SAMPLES = {
    "wav": wav_bytes(duration_s=0.6),
    "wav-extensible": wav_bytes(
        format_tag=0xFFFE, channels=2, duration_s=0.6, leading_chunks=[(b"LIST", b"INFOabc")]
    ),
    "flac": flac_bytes(duration_s=0.6),
    "flac-id3": id3_tag() + flac_bytes(duration_s=0.6),
    "mp3": mp3_bytes(duration_s=0.6),
    "mp3-id3-xing": mp3_bytes(id3=True, vbr_header="Xing", duration_s=0.6),
    "mp3-vbri": mp3_bytes(vbr_header="VBRI", duration_s=0.6),
    "mp3-lame": mp3_bytes(vbr_header="Info", duration_s=0.6, lame_delay_padding=(576, 100)),
    "ogg-streams": ogg_page(THEORA, sequence=0, header_type=0x02)
    + ogg_page(opus_head(), sequence=0, header_type=0x02, serial=2),
    "opus": ogg_opus_header_bytes(channels=1),
    "ogg-opus": ogg_opus_header_bytes(),
    "ogg-vorbis": ogg_vorbis_header_bytes(),
    "m4a": m4a_header_bytes(),
    "mp4": mp4_header_bytes(),
    "mp4-tracks": mp4_header_bytes(
        tracks=[
            mp4_video_track(),
            mp4_audio_track(
                config=aac_config(sample_rate=24000, sbr_rate=48000, signalling="compatible")
            ),
        ]
    ),
    "webm": webm_header_bytes(),
    "amr-wb": amr_bytes(wideband=True),
    "amr-nb": amr_bytes(wideband=False),
}


def outcome(ext: str, header: bytes, size: int) -> MediaInfo | str:
    """The result of both entry points; anything but MediaRejected propagates and fails."""
    with contextlib.suppress(MediaRejected):
        _inspect_content(ext, header, max(size, len(header)))  # no safety net
    try:
        return inspect_media(extension=ext, header=header, size=size)
    except MediaRejected as rejected:
        return rejected.reason


@pytest.mark.parametrize("name", sorted(VALID_SAMPLES))
def test_every_prefix_of_a_valid_header_gives_an_answer_not_a_crash(name):
    data = VALID_SAMPLES[name]
    ext = "." + name.split("-")[0]
    for cut in [*range(0, min(len(data), 400)), *range(400, len(data), 97)]:
        prefix = data[:cut]
        for size in (max(cut, 1), len(data)):  # the file is that short, or the read was
            assert isinstance(outcome(ext, prefix, size), MediaInfo | str)


def test_random_bytes_are_rejected_or_read_never_crash():
    rng = random.Random(20240611)
    exts = list(EXTENSION_FORMATS)
    for _ in range(400):
        data = rng.randbytes(rng.randrange(1, 600))
        answer = outcome(rng.choice(exts), data, rng.choice([len(data), 10**6]))
        assert isinstance(answer, MediaInfo | str)


def test_random_bytes_behind_real_magic_numbers_never_crash():
    rng = random.Random(7)
    magics = [b"RIFF\x00\x00\x00\x00WAVE", b"fLaC", b"ID3", b"OggS", b"\x1a\x45\xdf\xa3",
              b"\x00\x00\x00\x18ftyp", b"#!AMR-WB\n", b"#!AMR\n", b"\xff\xfb", b"RF64"]  # fmt: skip
    for _ in range(600):
        data = rng.choice(magics) + rng.randbytes(rng.randrange(0, 300))
        assert isinstance(outcome(".wav", data, rng.choice([len(data), 10**7])), MediaInfo | str)


def test_mutated_valid_headers_never_crash():
    rng = random.Random(99)
    samples = [data[:3000] for data in VALID_SAMPLES.values()]
    for _ in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randrange(1, 5)):
            at = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[at] = rng.choice([0, 0xFF, 0x80, 0x7F, rng.getrandbits(8)])
            else:
                del data[at : at + rng.randrange(1, 16)]
        cut = bytes(data[: rng.randrange(1, len(data) + 1)])
        ext = rng.choice(list(EXTENSION_FORMATS))
        assert isinstance(outcome(ext, cut, rng.choice([len(cut), 10**8])), MediaInfo | str)


# --- privacy and API -----------------------------------------------------------------------


def test_inspect_media_never_sees_the_object_key():
    parameters = inspect.signature(inspect_media).parameters
    assert list(parameters) == ["extension", "header", "size"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())


def test_header_bytes_is_one_ranged_get_of_64_kb():
    assert HEADER_BYTES == 65536


# --- the sample factory, checked independently ---------------------------------------------


def crc8_bitwise(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc16_bitwise(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_reference_crcs_match_their_published_check_values():
    # CRC-8/SMBUS and CRC-16/UMTS ("123456789"): FLAC's frame-header and frame CRCs
    assert crc8_bitwise(b"123456789") == 0xF4
    assert crc16_bitwise(b"123456789") == 0xFEE8
    # CRC-32/CKSUM without its final inversion is Ogg's page CRC
    assert ogg_crc(b"123456789") == 0x765E7680 ^ 0xFFFFFFFF


class BitReader:
    """Reads one bit at a time: deliberately unlike the factory's byte-flushing writer."""

    def __init__(self, data: bytes, byte_offset: int) -> None:
        self.data = data
        self.bit = byte_offset * 8

    def read(self, width: int) -> int:
        value = 0
        for _ in range(width):
            byte = self.data[self.bit // 8]
            value = value << 1 | (byte >> (7 - self.bit % 8)) & 1
            self.bit += 1
        return value

    def signed(self, width: int) -> int:
        value = self.read(width)
        return value - (1 << width) if value >> (width - 1) else value

    def align(self) -> int:
        self.bit = -(-self.bit // 8) * 8
        return self.bit // 8


RFC_RATE_CODES = {8000: 4, 16000: 5, 22050: 6, 24000: 7, 32000: 8, 44100: 9, 48000: 10}
RFC_SIZE_CODES = {8: 1, 12: 2, 16: 4, 20: 5, 24: 6, 32: 7}


def decode_flac(data: bytes) -> dict:
    """A minimal FLAC decoder for the factory's streams: checks every CRC it meets."""
    assert data[:4] == b"fLaC"
    pos, streaminfo = 4, b""
    while True:
        block_header, length = data[pos], int.from_bytes(data[pos + 1 : pos + 4], "big")
        if block_header & 0x7F == 0:
            streaminfo = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if block_header & 0x80:
            break
    assert len(streaminfo) == 34
    reader = BitReader(streaminfo, 0)
    min_block, max_block = reader.read(16), reader.read(16)
    min_frame, max_frame = reader.read(24), reader.read(24)
    rate, channels = reader.read(20), reader.read(3) + 1
    bits, total = reader.read(5) + 1, reader.read(36)
    md5 = streaminfo[18:]
    decoded: list[int] = []
    frame_sizes = []
    number = 0
    while pos < len(data):
        start, reader = pos, BitReader(data, pos)
        assert reader.read(15) == 0b111111111111100  # sync + reserved
        assert reader.read(1) == 0  # fixed block size
        block_code, rate_code = reader.read(4), reader.read(4)
        assignment, size_code, reserved = reader.read(4), reader.read(3), reader.read(1)
        assert (assignment, reserved) == (channels - 1, 0)
        assert size_code == RFC_SIZE_CODES.get(bits, 0)
        assert rate_code == RFC_RATE_CODES.get(rate, 0)  # 0: "see STREAMINFO"
        # The frame number in "UTF-8" coding
        first = reader.read(8)
        ones = 8 - (~first & 0xFF).bit_length()
        coded = first & (0x7F >> ones) if ones else first
        for _ in range(max(ones - 1, 0)):
            continuation = reader.read(8)
            assert continuation >> 6 == 0b10
            coded = coded << 6 | continuation & 0x3F
        assert coded == number
        assert block_code == 0b0111
        block = reader.read(16) + 1
        assert block <= max_block
        header_end = reader.bit // 8
        assert reader.read(8) == crc8_bitwise(data[start:header_end])
        per_channel = []
        for _ in range(channels):
            assert reader.read(1) == 0  # padding
            assert reader.read(6) == 0b000001  # VERBATIM
            assert reader.read(1) == 0  # no wasted bits
            per_channel.append([reader.signed(bits) for _ in range(block)])
        end = reader.align()
        assert reader.read(16) == crc16_bitwise(data[start:end])
        pos = end + 2
        frame_sizes.append(pos - start)
        decoded += [s for frame in zip(*per_channel, strict=True) for s in frame]
        number += 1
    return {
        "rate": rate, "channels": channels, "bits": bits, "total": total, "md5": md5,
        "samples": decoded, "min_block": min_block, "frame_sizes": frame_sizes,
        "min_frame": min_frame, "max_frame": max_frame,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("rate", "channels", "bits", "duration_s"),
    [
        (16000, 1, 16, 0.6),  # two frames, the last one short
        (44100, 2, 24, 0.1),
        (48000, 2, 8, 0.1),
        (22050, 1, 12, 0.1),  # samples not byte-aligned
        (37800, 1, 20, 0.1),  # a rate with no frame code: taken from STREAMINFO
    ],
)
def test_generated_flac_decodes_with_correct_crcs_and_md5(rate, channels, bits, duration_s):
    data = flac_bytes(sample_rate=rate, channels=channels, bits=bits, duration_s=duration_s)
    stream = decode_flac(data)
    expected = pcm_samples(sample_rate=rate, channels=channels, bits=bits, duration_s=duration_s)
    assert stream["samples"] == expected
    assert (stream["rate"], stream["channels"], stream["bits"]) == (rate, channels, bits)
    assert stream["total"] == len(expected) // channels
    width = -(-bits // 8)
    pcm = b"".join(s.to_bytes(width, "little", signed=True) for s in stream["samples"])
    assert stream["md5"] == hashlib.md5(pcm, usedforsecurity=False).digest()
    assert stream["min_frame"] == min(stream["frame_sizes"])
    assert stream["max_frame"] == max(stream["frame_sizes"])


def test_generated_flac_carries_the_same_samples_as_the_generated_wav():
    flac = decode_flac(flac_bytes(sample_rate=44100, channels=2, duration_s=0.2))
    with wave.open(io.BytesIO(wav_bytes(sample_rate=44100, channels=2, duration_s=0.2))) as w:
        frames = w.readframes(w.getnframes())
    assert list(struct.unpack(f"<{len(frames) // 2}h", frames)) == flac["samples"]


def test_the_flac_checker_catches_a_damaged_frame():
    data = bytearray(flac_bytes(duration_s=0.1))
    data[-10] ^= 0x01
    with pytest.raises(AssertionError):
        decode_flac(bytes(data))


@pytest.mark.parametrize("number", [0, 0x7F, 0x80, 0x7FF, 0x800, 0xD800, 0xFFFF, 0x10000, 0x10FFFF])
def test_flac_frame_numbers_use_utf8_coding(number):
    assert _utf8_coded(number) == chr(number).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (44100, 2), (48000, 2)])
def test_generated_wav_reads_back_with_the_stdlib_wave_module(rate, channels):
    with wave.open(io.BytesIO(wav_bytes(sample_rate=rate, channels=channels))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, channels, 2)
        assert w.getnframes() == rate
        frames = w.readframes(rate)
    expected = pcm_samples(sample_rate=rate, channels=channels)
    assert list(struct.unpack(f"<{len(expected)}h", frames)) == expected


def test_generated_8_bit_wav_is_unsigned():
    data = wav_bytes(bits=8, duration_s=0.01)
    samples = data[44:]
    assert samples[0] == 128  # sin(0) is the midpoint
    assert min(samples) >= 128 - 64
    assert max(samples) <= 128 + 64


def test_generated_mp3_frames_chain_at_the_exact_bitrate():
    data = mp3_bytes(duration_s=2.0)
    pos, frames = 0, 0
    while pos < len(data):
        assert data[pos : pos + 2] == b"\xff\xfb"  # MPEG-1 layer III, no CRC
        padding = data[pos + 2] >> 1 & 1
        pos += 144 * 128_000 // 44100 + padding
        frames += 1
    assert pos == len(data)
    assert len(data) * 8 / (frames * 1152 / 44100) == pytest.approx(128_000, rel=1e-3)


def test_generated_ogg_pages_carry_valid_crcs():
    data = ogg_opus_header_bytes()
    pos = 0
    while pos < len(data):
        segments = data[pos + 26]
        length = 27 + segments + sum(data[pos + 27 : pos + 27 + segments])
        page = bytearray(data[pos : pos + length])
        stored = struct.unpack_from("<I", page, 22)[0]
        page[22:26] = bytes(4)
        assert stored == ogg_crc(bytes(page))
        pos += length
    assert pos == len(data)


def test_the_factory_is_deterministic():
    assert flac_bytes() == flac_bytes()
    assert wav_bytes(channels=2) == wav_bytes(channels=2)
    assert mp3_bytes(id3=True) == mp3_bytes(id3=True)
    assert webm_header_bytes() == webm_header_bytes()
