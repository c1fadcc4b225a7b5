"""AAC's AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1): the rate and channels an MP4 plays at.

HE-AAC (SBR) decodes at twice its core rate. Where the config says so, explicitly (object
type 5 or 29 with an extension rate, or the backward-compatible 0x2B7 sync extension), the
rate is the extension's, the output rate ffprobe reports. Implicit signalling (a plain AAC-LC
config whose frames carry SBR data) is visible only by decoding: it reads as its core rate,
as ffmpeg's demuxer reads it. Parametric stereo (type 29) decodes to 2 channels.
"""

from __future__ import annotations

from typing import Final

from pipeline.media.reading import BitReader

_RATES: Final = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025)
_RATES_LOW: Final = (8000, 7350)
_CHANNELS: Final = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}
_SBR, _PS = 5, 29
_SYNC_EXTENSION, _PS_SYNC = 0x2B7, 0x548
_MOST_CONFIG_BYTES = 64  # configs are a few bytes; this bounds the bit-by-bit search below


def audio_specific_config(config: bytes) -> tuple[int | None, int | None]:
    """(sample rate, channels) a decoder outputs; None where the config does not say.

    Raises Truncated when the config is cut short.
    """
    bits = BitReader(config[:_MOST_CONFIG_BYTES])
    object_type = _object_type(bits)
    rate = _frequency(bits)
    channels = _CHANNELS.get(bits.read(4))  # 0: in a program config element, not read here
    parametric_stereo = False
    # ffmpeg's test: type 29 followed by these bits is an MP3-on-MP4 config, not PS
    if object_type == _SBR or (
        object_type == _PS and not (bits.peek(3) & 0x03 and not bits.peek(9) & 0x3F)
    ):
        parametric_stereo = object_type == _PS
        rate = _frequency(bits)
    else:
        # Backward-compatible signalling: a sync extension after the core config
        while bits.left > 15:
            if bits.peek(11) != _SYNC_EXTENSION:
                bits.read(1)
                continue
            bits.read(11)
            if _object_type(bits) == _SBR and bits.read(1):
                rate = _frequency(bits) or rate
                if bits.left > 11 and bits.read(11) == _PS_SYNC:
                    parametric_stereo = bool(bits.read(1))
            break
    if parametric_stereo and channels == 1:
        channels = 2
    return rate, channels


def _object_type(bits: BitReader) -> int:
    object_type = bits.read(5)
    return 32 + bits.read(6) if object_type == 31 else object_type


def _frequency(bits: BitReader) -> int | None:
    index = bits.read(4)
    if index == 15:  # the escape: the frequency itself follows
        return bits.read(24) or None
    table = _RATES + _RATES_LOW
    return table[index] if index < len(table) else None
