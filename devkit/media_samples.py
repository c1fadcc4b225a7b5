"""Sample media made in memory, for tests, the demo and the emulator (dev only, not shipped).

WAV, FLAC, MP3 and AMR samples are real, decodable audio: a sine tone (channel ``c`` plays
``(c + 1) * tone_hz``) or, for MP3 and AMR, frames of silence. The OGG, MP4/M4A and WebM
helpers make headers only: structurally valid, enough for ``pipeline.media`` to recognise
and read, but with no audio packets to decode. Every function is deterministic.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM/IEEE_FLOAT share this tail after their 16-bit format tag
KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")

FLAC_BLOCK_SIZE = 4096


# --- tones ---------------------------------------------------------------------------------


def sine(*, sample_rate: int, channels: int, duration_s: float, tone_hz: float) -> list[float]:
    """Interleaved half-scale sine samples in [-0.5, 0.5]; channel c plays (c + 1) * tone_hz."""
    frames = round(duration_s * sample_rate)
    step = [2 * math.pi * tone_hz * (c + 1) / sample_rate for c in range(channels)]
    return [0.5 * math.sin(step[c] * i) for i in range(frames) for c in range(channels)]


def pcm_samples(
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    duration_s: float = 1.0,
    tone_hz: float = 440.0,
) -> list[int]:
    """Interleaved signed integer samples of the tone at the given bit depth."""
    peak = (1 << (bits - 1)) - 1
    tone = sine(sample_rate=sample_rate, channels=channels, duration_s=duration_s, tone_hz=tone_hz)
    return [round(x * peak) for x in tone]


def _native_to_le(values: array[Any]) -> bytes:
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


# --- WAV -----------------------------------------------------------------------------------


def riff_chunk(chunk_id: bytes, body: bytes) -> bytes:
    """A RIFF chunk, with the pad byte that keeps the next one word-aligned."""
    return chunk_id + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def wav_header_bytes(
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    data_bytes: int,
    format_tag: int = WAVE_FORMAT_PCM,
    subformat: int = WAVE_FORMAT_PCM,
    leading_chunks: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A WAV header up to and including the data chunk's 8-byte header.

    ``data_bytes`` is the declared audio size (capped at 0xFFFFFFFF): a header for a long
    recording, without the gigabytes. ``leading_chunks`` (id, body) go before "fmt ".
    """
    block_align = channels * ((bits + 7) // 8)
    byte_rate = sample_rate * block_align
    common = (channels, sample_rate, byte_rate, block_align, bits)
    if format_tag == WAVE_FORMAT_EXTENSIBLE:
        mask = {1: 0x4, 2: 0x3}.get(channels, 0)  # front centre; front left + right
        fmt = struct.pack("<HHIIHHHHI", format_tag, *common, 22, bits, mask)
        fmt += struct.pack("<H", subformat) + KSDATAFORMAT_TAIL
    elif format_tag == WAVE_FORMAT_PCM:
        fmt = struct.pack("<HHIIHH", format_tag, *common)
    else:  # non-PCM formats carry cbSize
        fmt = struct.pack("<HHIIHHH", format_tag, *common, 0)
    chunks = b"".join(riff_chunk(cid, body) for cid, body in leading_chunks)
    chunks += riff_chunk(b"fmt ", fmt)
    riff_size = min(4 + len(chunks) + 8 + data_bytes + (data_bytes & 1), 0xFFFFFFFF)
    data_header = b"data" + struct.pack("<I", min(data_bytes, 0xFFFFFFFF))
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + chunks + data_header


def wav_bytes(
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    duration_s: float = 1.0,
    tone_hz: float = 440.0,
    format_tag: int = WAVE_FORMAT_PCM,
    subformat: int = WAVE_FORMAT_PCM,
    leading_chunks: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A complete WAV file of a sine tone.

    PCM at 8 (unsigned, as WAV stores it), 16, 24 or 32 bits; IEEE float at 32 or 64 bits
    (``format_tag=3``, or extensible with ``subformat=3``).
    """
    if format_tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_EXTENSIBLE):
        raise ValueError(f"format_tag {format_tag:#x}: only PCM, float or extensible")
    is_float = format_tag == WAVE_FORMAT_IEEE_FLOAT or (
        format_tag == WAVE_FORMAT_EXTENSIBLE and subformat == WAVE_FORMAT_IEEE_FLOAT
    )
    if is_float:
        if bits not in (32, 64):
            raise ValueError("float WAV is 32 or 64 bits")
        tone = sine(
            sample_rate=sample_rate, channels=channels, duration_s=duration_s, tone_hz=tone_hz
        )
        data = _native_to_le(array("f" if bits == 32 else "d", tone))
    else:
        samples = pcm_samples(
            sample_rate=sample_rate,
            channels=channels,
            bits=bits,
            duration_s=duration_s,
            tone_hz=tone_hz,
        )
        data = _pcm_le(samples, bits, unsigned_8bit=True)
    header = wav_header_bytes(
        sample_rate=sample_rate,
        channels=channels,
        bits=bits,
        data_bytes=len(data),
        format_tag=format_tag,
        subformat=subformat,
        leading_chunks=leading_chunks,
    )
    return header + data + b"\x00" * (len(data) & 1)


def _pcm_le(samples: list[int], bits: int, *, unsigned_8bit: bool) -> bytes:
    """Little-endian samples in whole bytes (WAV data; FLAC's MD5 input, with signed 8-bit)."""
    width = (bits + 7) // 8
    if width == 1:
        return bytes((s + 128) & 0xFF if unsigned_8bit else s & 0xFF for s in samples)
    if width == 2:
        return _native_to_le(array("h", samples))
    if width == 4:
        return _native_to_le(array("i", samples))
    return b"".join(s.to_bytes(width, "little", signed=True) for s in samples)


# --- FLAC ----------------------------------------------------------------------------------

_FLAC_RATE_CODES = {
    88200: 1, 176400: 2, 192000: 3, 8000: 4, 16000: 5, 22050: 6,
    24000: 7, 32000: 8, 44100: 9, 48000: 10, 96000: 11,
}  # fmt: skip
_FLAC_BITS_CODES = {8: 1, 12: 2, 16: 4, 20: 5, 24: 6, 32: 7}


def _crc_table(poly: int, width: int) -> list[int]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
        table.append(crc)
    return table


_CRC8 = _crc_table(0x07, 8)
_CRC16 = _crc_table(0x8005, 16)
_CRC32_OGG = _crc_table(0x04C11DB7, 32)


def flac_crc8(data: bytes) -> int:
    """FLAC frame-header CRC-8 (polynomial 0x07, initial 0)."""
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def flac_crc16(data: bytes) -> int:
    """FLAC frame CRC-16 (polynomial 0x8005, initial 0, not reflected)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


class _BitWriter:
    """Big-endian bit packing, flushed a byte at a time so long streams stay linear."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._bits = 0

    def write(self, value: int, width: int) -> None:
        self._acc = (self._acc << width) | (value & ((1 << width) - 1))
        self._bits += width
        while self._bits >= 8:
            self._bits -= 8
            self._out.append((self._acc >> self._bits) & 0xFF)
        self._acc &= (1 << self._bits) - 1

    def getvalue(self) -> bytes:
        """The bytes so far, zero-padded to a byte boundary."""
        tail = bytes([(self._acc << (8 - self._bits)) & 0xFF]) if self._bits else b""
        return bytes(self._out) + tail


def _utf8_coded(number: int) -> bytes:
    """FLAC's frame number coding: UTF-8's scheme stretched to 36 bits."""
    if number < 0x80:
        return bytes([number])
    for length in range(2, 8):
        if number < 1 << (5 * length + 1):
            tail = []
            for _ in range(length - 1):
                tail.append(0x80 | (number & 0x3F))
                number >>= 6
            first = ((0xFF << (8 - length)) & 0xFF) | number
            return bytes([first, *reversed(tail)])
    raise ValueError("frame number too large")


def _flac_frame(
    number: int, block: Sequence[int], *, channels: int, bits: int, sample_rate: int
) -> bytes:
    """One fixed-blocksize frame of independent VERBATIM subframes."""
    frames = len(block) // channels
    header = bytearray(b"\xff\xf8")  # sync, reserved, fixed blocksize
    header.append(0x70 | _FLAC_RATE_CODES.get(sample_rate, 0))  # 0111: 16-bit size at end
    header.append((channels - 1) << 4 | _FLAC_BITS_CODES.get(bits, 0) << 1)
    header += _utf8_coded(number)
    header += struct.pack(">H", frames - 1)
    header.append(flac_crc8(bytes(header)))
    writer = _BitWriter()
    for channel in range(channels):
        writer.write(0b0_000001_0, 8)  # pad bit, VERBATIM, no wasted bits
        for sample in block[channel::channels]:
            writer.write(sample, bits)
    frame = bytes(header) + writer.getvalue()
    return frame + struct.pack(">H", flac_crc16(frame))


def flac_bytes(
    *,
    sample_rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    duration_s: float = 1.0,
    tone_hz: float = 440.0,
    total_samples_known: bool = True,
) -> bytes:
    """A real FLAC stream of a sine tone: STREAMINFO with total samples and the PCM's MD5,
    then frames of VERBATIM subframes with their CRC-8 and CRC-16.

    ``total_samples_known=False`` writes 0 ("unknown") as the total, as streaming encoders do.
    """
    if not 4 <= bits <= 32 or not 1 <= channels <= 8:
        raise ValueError("FLAC takes 4-32 bits and 1-8 channels")
    samples = pcm_samples(
        sample_rate=sample_rate,
        channels=channels,
        bits=bits,
        duration_s=duration_s,
        tone_hz=tone_hz,
    )
    total = len(samples) // channels
    frames = [
        _flac_frame(
            number,
            samples[first * channels : (first + FLAC_BLOCK_SIZE) * channels],
            channels=channels,
            bits=bits,
            sample_rate=sample_rate,
        )
        for number, first in enumerate(range(0, total, FLAC_BLOCK_SIZE))
    ]
    # The MD5 covers the decoded samples: interleaved, little-endian, signed, whole bytes
    md5 = hashlib.md5(_pcm_le(samples, bits, unsigned_8bit=False), usedforsecurity=False)
    sizes = [len(f) for f in frames] or [0]
    packed = (
        sample_rate << 44
        | (channels - 1) << 41
        | (bits - 1) << 36
        | (total if total_samples_known else 0)
    )
    streaminfo = (
        struct.pack(">HH", FLAC_BLOCK_SIZE, FLAC_BLOCK_SIZE)
        + min(sizes).to_bytes(3, "big")
        + max(sizes).to_bytes(3, "big")
        + struct.pack(">Q", packed)
        + md5.digest()
    )
    block_header = bytes([0x80]) + len(streaminfo).to_bytes(3, "big")  # last metadata block
    return b"fLaC" + block_header + streaminfo + b"".join(frames)


# --- MP3 -----------------------------------------------------------------------------------

# sample rate -> (MPEG version, rate index); version 25 is MPEG-2.5
_MPEG_RATES = {
    44100: (1, 0), 48000: (1, 1), 32000: (1, 2),
    22050: (2, 0), 24000: (2, 1), 16000: (2, 2),
    11025: (25, 0), 12000: (25, 1), 8000: (25, 2),
}  # fmt: skip
_MPEG_VERSION_BITS = {1: 0b11, 2: 0b10, 25: 0b00}
_LAYER3_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}


def id3_tag(*, title: str = "Sample tone", padding: int = 0) -> bytes:
    """An ID3v2.3 tag with a title frame and ``padding`` zero bytes."""
    text = b"\x00" + title.encode("latin-1")  # encoding byte 0: ISO-8859-1
    body = b"TIT2" + struct.pack(">I", len(text)) + b"\x00\x00" + text + bytes(padding)
    size = len(body)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + syncsafe + body


def mp3_bytes(
    *,
    sample_rate: int = 44100,
    bitrate_kbps: int = 128,
    channels: int = 2,
    duration_s: float = 1.0,
    id3: bool = False,
    id3_padding: int = 0,
    vbr_header: str | None = None,
    lame_delay_padding: tuple[int, int] | None = None,
) -> bytes:
    """Constant-bitrate MPEG Layer III frames of digital silence (all-zero side info).

    The MPEG version follows the rate: 32-48 kHz MPEG-1, 16-24 kHz MPEG-2, 8-12 kHz
    MPEG-2.5. ``vbr_header`` "Xing", "Info" or "VBRI" prepends a tag frame carrying the
    frame count, as LAME and Fraunhofer encoders write it; ``lame_delay_padding`` adds
    LAME's extension to a Xing/Info tag with those encoder delay and padding samples.
    """
    version, rate_index = _MPEG_RATES[sample_rate]
    bitrate_index = _LAYER3_KBPS[1 if version == 1 else 2].index(bitrate_kbps)
    samples = 1152 if version == 1 else 576
    slot = samples // 8 * bitrate_kbps * 1000  # frame bytes * sample_rate
    count = max(1, math.ceil(duration_s * sample_rate / samples))
    b1 = 0xE0 | _MPEG_VERSION_BITS[version] << 3 | 0b01 << 1 | 1  # layer III, no CRC
    mode = 0b11 if channels == 1 else 0b00  # mono or stereo

    def frame(index: int) -> bytearray:
        # Pad a frame whenever the running size would lag the exact bitrate
        length = (index + 1) * slot // sample_rate - index * slot // sample_rate
        pad = length - slot // sample_rate
        header = bytes([0xFF, b1, bitrate_index << 4 | rate_index << 2 | pad << 1, mode << 6])
        return bytearray(header + bytes(length - 4))

    audio = [frame(i + (1 if vbr_header else 0)) for i in range(count)]
    stream = b"".join(audio)
    if vbr_header:
        tag_frame = frame(0)
        total_bytes = len(tag_frame) + len(stream)
        if vbr_header in ("Xing", "Info"):
            side = (32 if channels == 2 else 17) if version == 1 else (17 if channels == 2 else 9)
            tag = vbr_header.encode() + struct.pack(">III", 0x3, count, total_bytes)
            if lame_delay_padding is not None:
                delay, padding = lame_delay_padding
                # version, then revision .. bitrate (12 bytes), then 12 + 12 bits
                tag += b"LAME3.100" + bytes(12) + (delay << 12 | padding).to_bytes(3, "big")
            tag_frame[4 + side : 4 + side + len(tag)] = tag
        elif vbr_header == "VBRI":
            tag = b"VBRI" + struct.pack(">HHHIIHHHH", 1, 0, 75, total_bytes, count, 0, 1, 2, 1)
            tag_frame[36 : 36 + len(tag)] = tag
        else:
            raise ValueError("vbr_header is Xing, Info or VBRI")
        stream = bytes(tag_frame) + stream
    return (id3_tag(padding=id3_padding) if id3 else b"") + stream


# --- OGG -----------------------------------------------------------------------------------


def ogg_crc(data: bytes) -> int:
    """Ogg page CRC-32 (polynomial 0x04C11DB7, initial 0, not reflected)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC32_OGG[(crc >> 24) ^ byte]
    return crc


def ogg_page(
    packet: bytes, *, sequence: int, header_type: int = 0, granule: int = 0, serial: int = 0x4D44
) -> bytes:
    """One Ogg page holding one whole packet, with its CRC."""
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    page = bytearray(b"OggS" + bytes([0, header_type]))
    page += struct.pack("<qII", granule, serial, sequence) + bytes(4)
    page += bytes([len(lacing)]) + lacing + packet
    page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
    return bytes(page)


def opus_head(*, channels: int = 2, input_rate: int = 44100) -> bytes:
    """An OpusHead packet (mapping family 0 for mono/stereo, 1 beyond)."""
    head = b"OpusHead" + bytes([1, channels]) + struct.pack("<HIh", 312, input_rate, 0)
    if channels <= 2:
        return head + b"\x00"
    return head + bytes([1, channels, 0, *range(channels)])


def ogg_opus_header_bytes(*, channels: int = 2, input_rate: int = 44100) -> bytes:
    """The two header pages of an Ogg Opus stream (OpusHead, OpusTags).

    Headers only: there are no audio packets, so a decoder finds zero samples.
    """
    tags = b"OpusTags" + struct.pack("<I", 6) + b"devkit" + struct.pack("<I", 0)
    return ogg_page(
        opus_head(channels=channels, input_rate=input_rate), sequence=0, header_type=0x02
    ) + ogg_page(tags, sequence=1)


def ogg_vorbis_header_bytes(*, sample_rate: int = 44100, channels: int = 2) -> bytes:
    """The first page of an Ogg Vorbis stream (the identification header only: not decodable)."""
    ident = b"\x01vorbis" + struct.pack("<IBIiii", 0, channels, sample_rate, 0, 128000, 0)
    ident += bytes([0xB8, 0x01])  # block sizes 256/2048, framing bit
    return ogg_page(ident, sequence=0, header_type=0x02)


# --- MP4 / M4A -----------------------------------------------------------------------------


def iso_box(box_type: bytes, body: bytes) -> bytes:
    """An ISO base media box."""
    return struct.pack(">I", 8 + len(body)) + box_type + body


_AAC_RATE_INDEX = {
    rate: index
    for index, rate in enumerate(
        (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
    )
}


def _write_frequency(out: _BitWriter, rate: int) -> None:
    if rate in _AAC_RATE_INDEX:
        out.write(_AAC_RATE_INDEX[rate], 4)
    else:  # the escape: the frequency itself
        out.write(15, 4)
        out.write(rate, 24)


def aac_config(
    *,
    sample_rate: int = 44100,
    channel_config: int = 2,
    sbr_rate: int | None = None,
    parametric_stereo: bool = False,
    signalling: str = "hierarchical",
) -> bytes:
    """An AudioSpecificConfig: AAC-LC, or HE-AAC (SBR at ``sbr_rate``, optionally with PS)
    signalled explicitly, either hierarchically (object type 5 or 29 first) or by the
    backward-compatible sync extension after the AAC-LC config."""
    out = _BitWriter()
    if sbr_rate is not None and signalling == "hierarchical":
        out.write(29 if parametric_stereo else 5, 5)
        _write_frequency(out, sample_rate)
        out.write(channel_config, 4)
        _write_frequency(out, sbr_rate)
        out.write(2, 5)  # the core: AAC-LC
        out.write(0, 3)  # GASpecificConfig: 1024-sample frames, no core coder, no extension
        return out.getvalue()
    out.write(2, 5)
    _write_frequency(out, sample_rate)
    out.write(channel_config, 4)
    out.write(0, 3)
    if sbr_rate is not None:  # backward compatible: decoders without SBR ignore this
        out.write(0x2B7, 11)
        out.write(5, 5)
        out.write(1, 1)
        _write_frequency(out, sbr_rate)
        if parametric_stereo:
            out.write(0x548, 11)
            out.write(1, 1)
    return out.getvalue()


def _descriptor(tag: int, body: bytes) -> bytes:
    size = len(body)
    coded = bytes(
        [0x80 | (size >> 21) & 0x7F, 0x80 | (size >> 14) & 0x7F, 0x80 | (size >> 7) & 0x7F]
    )
    return bytes([tag]) + coded + bytes([size & 0x7F]) + body


def mp4_audio_track(
    *,
    sample_rate: int = 44100,
    channels: int = 2,
    duration_s: float | None = 1.0,
    config: bytes | None = None,
) -> bytes:
    """A trak box for an AAC audio track: mdhd (the duration in samples), hdlr "soun", and an
    mp4a sample entry whose esds carries ``config`` (by default AAC-LC at the entry's rate)."""
    if config is None:
        config = aac_config(sample_rate=sample_rate, channel_config=channels)
    duration = round(duration_s * sample_rate) if duration_s is not None else 0
    mdhd = struct.pack(">IIIIIHH", 0, 0, 0, sample_rate, duration, 0x55C4, 0)  # "und"
    hdlr = struct.pack(">II", 0, 0) + b"soun" + bytes(12) + b"SoundHandler\x00"
    decoder = bytes([0x40, 0x15]) + bytes(3) + struct.pack(">II", 128000, 128000)
    es = struct.pack(">HB", 1, 0) + _descriptor(0x04, decoder + _descriptor(0x05, config))
    esds = iso_box(b"esds", bytes(4) + _descriptor(0x03, es + _descriptor(0x06, b"\x02")))
    entry = bytes(6) + struct.pack(">H", 1) + bytes(8)  # reserved, data reference 1, v0
    entry += struct.pack(">HHHHI", channels, 16, 0, 0, min(sample_rate, 0xFFFF) << 16)
    stsd = iso_box(b"stsd", struct.pack(">II", 0, 1) + iso_box(b"mp4a", entry + esds))
    minf = iso_box(b"minf", iso_box(b"smhd", bytes(8)) + iso_box(b"stbl", stsd))
    mdia = iso_box(b"mdia", iso_box(b"mdhd", mdhd) + iso_box(b"hdlr", hdlr) + minf)
    return iso_box(b"trak", mdia)


def mp4_video_track(*, duration_s: float = 1.0) -> bytes:
    """A trak box for a video track (hdlr "vide"), with no sample descriptions."""
    mdhd = struct.pack(">IIIIIHH", 0, 0, 0, 1000, round(duration_s * 1000), 0x55C4, 0)
    hdlr = struct.pack(">II", 0, 0) + b"vide" + bytes(12) + b"VideoHandler\x00"
    return iso_box(b"trak", iso_box(b"mdia", iso_box(b"mdhd", mdhd) + iso_box(b"hdlr", hdlr)))


def m4a_header_bytes(
    *,
    major_brand: bytes = b"M4A ",
    compatible_brands: Iterable[bytes] = (b"M4A ", b"isom", b"mp42"),
    duration_s: float | None = 1.0,
    timescale: int = 44100,
    tracks: Sequence[bytes] | None = None,
) -> bytes:
    """ftyp, a moov holding mvhd (the movie's duration) and the tracks, and an empty mdat.

    Headers only: no samples, so nothing decodes. ``tracks`` defaults to one AAC track of
    ``duration_s`` (44.1 kHz stereo); ``duration_s=None`` writes 0, as fragmented files do.
    """
    ftyp = iso_box(b"ftyp", major_brand + struct.pack(">I", 0) + b"".join(compatible_brands))
    duration = round(duration_s * timescale) if duration_s is not None else 0
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = (
        struct.pack(">IIIII", 0, 0, 0, timescale, duration)  # version 0, flags, times
        + struct.pack(">IH", 0x10000, 0x100)  # rate 1.0, volume 1.0
        + bytes(10)
        + matrix
        + bytes(24)
        + struct.pack(">I", 2)  # next track ID
    )
    if tracks is None:
        tracks = [mp4_audio_track(duration_s=duration_s)]
    moov = iso_box(b"moov", iso_box(b"mvhd", mvhd) + b"".join(tracks))
    return ftyp + moov + iso_box(b"mdat", b"")


def mp4_header_bytes(
    *, duration_s: float | None = 1.0, tracks: Sequence[bytes] | None = None
) -> bytes:
    """Like :func:`m4a_header_bytes` with the generic MP4 brands (no M4A brand)."""
    return m4a_header_bytes(
        major_brand=b"isom",
        compatible_brands=(b"isom", b"iso2", b"avc1", b"mp41"),
        duration_s=duration_s,
        timescale=1000,
        tracks=tracks,
    )


# --- WebM ----------------------------------------------------------------------------------


def ebml_element(element_id: int, body: bytes) -> bytes:
    """An EBML element: id, size as a variable-length integer, body."""
    for length in range(1, 9):
        if len(body) < (1 << (7 * length)) - 1:  # all ones would mean "unknown size"
            size = ((1 << (7 * length)) | len(body)).to_bytes(length, "big")
            return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + size + body
    raise ValueError("element too large")


def _ebml_uint(element_id: int, value: int) -> bytes:
    return ebml_element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def webm_header_bytes(
    *,
    doc_type: str = "webm",
    duration_s: float | None = 1.0,
    sample_rate: float = 48000.0,
    channels: int = 1,
    codec_id: str = "A_OPUS",
) -> bytes:
    """An EBML header, then a Segment (unknown size, as live recorders write it) with Info and
    one audio track.

    Headers only: no Cluster, so nothing decodes. ``duration_s=None`` leaves Duration out,
    as browsers' MediaRecorder does. ``doc_type="matroska"`` makes the MKA equivalent.
    """
    header = ebml_element(
        0x1A45DFA3,
        _ebml_uint(0x4286, 1)  # EBMLVersion
        + _ebml_uint(0x42F7, 1)  # EBMLReadVersion
        + _ebml_uint(0x42F2, 4)  # EBMLMaxIDLength
        + _ebml_uint(0x42F3, 8)  # EBMLMaxSizeLength
        + ebml_element(0x4282, doc_type.encode())  # DocType
        + _ebml_uint(0x4287, 4)  # DocTypeVersion
        + _ebml_uint(0x4285, 2),  # DocTypeReadVersion
    )
    info = _ebml_uint(0x2AD7B1, 1_000_000)  # TimecodeScale: 1 ms ticks
    info += ebml_element(0x4D80, b"devkit") + ebml_element(0x5741, b"devkit")
    if duration_s is not None:
        info += ebml_element(0x4489, struct.pack(">d", duration_s * 1000))
    audio = ebml_element(0xB5, struct.pack(">d", sample_rate)) + _ebml_uint(0x9F, channels)
    entry = _ebml_uint(0xD7, 1) + _ebml_uint(0x73C5, 1) + _ebml_uint(0x83, 2)  # audio track
    entry += ebml_element(0x86, codec_id.encode())
    if codec_id == "A_OPUS":
        entry += ebml_element(0x63A2, opus_head(channels=channels, input_rate=48000))
    entry += ebml_element(0xE1, audio)
    segment_body = ebml_element(0x1549A966, info) + ebml_element(
        0x1654AE6B, ebml_element(0xAE, entry)
    )
    unknown_size = b"\x01" + b"\xff" * 7
    return header + (0x18538067).to_bytes(4, "big") + unknown_size + segment_body


# --- AMR -----------------------------------------------------------------------------------


def amr_bytes(*, wideband: bool, duration_s: float = 1.0) -> bytes:
    """An AMR file (RFC 4867 storage format) of 20 ms frames in the highest-rate mode.

    The frame payloads are zeros: they decode, as comfort-noise-like sound, not a tone.
    """
    frames = max(1, round(duration_s / 0.020))
    if wideband:  # mode 8 (23.85 kbit/s): 60 bytes of speech bits after the ToC byte
        return b"#!AMR-WB\n" + (bytes([8 << 3 | 0x04]) + bytes(60)) * frames
    # mode 7 (12.2 kbit/s): 31 bytes after the ToC byte
    return b"#!AMR\n" + (bytes([7 << 3 | 0x04]) + bytes(31)) * frames


# --- not audio -----------------------------------------------------------------------------


def png_bytes() -> bytes:
    """A valid 1x1 white PNG image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\xff\xff")  # filter byte, one pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def text_bytes() -> bytes:
    """A short UTF-8 text file, as a mislabelled upload would be."""
    return "Visit notes\n\nThis file is text, not a recording. Café, 37.5 °C.\n".encode()
