"""Bounds-checked reads: a header cut short or lying about a size raises Truncated, never
IndexError or struct.error."""

from __future__ import annotations

import struct
from typing import Any

U8 = struct.Struct("B")
U16LE = struct.Struct("<H")
U32LE = struct.Struct("<I")
U64LE = struct.Struct("<Q")
U16BE = struct.Struct(">H")
U32BE = struct.Struct(">I")
U64BE = struct.Struct(">Q")
F32BE = struct.Struct(">f")
F64BE = struct.Struct(">d")


class Truncated(Exception):
    """A read ran past the bytes we have: the header is cut short or lies about a size."""


def unpack(layout: struct.Struct, data: bytes, offset: int) -> tuple[Any, ...]:
    if offset < 0 or offset + layout.size > len(data):
        raise Truncated
    return layout.unpack_from(data, offset)


def uint(layout: struct.Struct, data: bytes, offset: int) -> int:
    return int(unpack(layout, data, offset)[0])


def take(data: bytes, offset: int, length: int) -> bytes:
    if offset < 0 or length < 0 or offset + length > len(data):
        raise Truncated
    return data[offset : offset + length]


class BitReader:
    """Reads big-endian bit fields (AAC's AudioSpecificConfig); past the end raises Truncated."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._size = len(data) * 8
        self._bit = 0

    def read(self, width: int) -> int:
        end = self._bit + width
        if end > self._size:
            raise Truncated
        self._bit = end
        return (self._value >> (self._size - end)) & ((1 << width) - 1)

    def peek(self, width: int) -> int:
        at = self._bit
        value = self.read(width)
        self._bit = at
        return value

    @property
    def left(self) -> int:
        return self._size - self._bit
