"""The binary tensor data extension (as Triton, tritonclient and MLServer speak it), as pure functions.

A request with the header Inference-Header-Content-Length: N carries its JSON
in the first N body bytes; the rest holds the tensors whose parameters have
binary_data_size, back to back in input order. Numbers are little-endian in
row-major order; BOOL is one byte per element; each BYTES element is a 4-byte
little-endian length followed by its bytes. Responses use the same layout.
"""
import struct
from typing import Optional

import numpy as np

from swarmml_model_service.errors import BadRequest

HEADER = b"inference-header-content-length"

# Little-endian explicitly: the wire format is, whatever the host is.
WIRE_DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
_LEN = struct.Struct("<I")


def split_body(raw: bytes, header_length: Optional[int]) -> tuple:
    """(JSON bytes, binary tail as a memoryview or None)."""
    if header_length is None:
        return raw, None
    if header_length > len(raw):
        raise BadRequest(f"Inference-Header-Content-Length is {header_length} but the body has {len(raw)} bytes")
    view = memoryview(raw)
    return view[:header_length], view[header_length:]


def header_length(value: bytes) -> int:
    if not value.isdigit():
        raise BadRequest("Inference-Header-Content-Length must be a byte count, "
                         f"got {value.decode(errors='replace')!r}")
    return int(value)


class BinaryReader:
    """Hands out the tail's tensors in order, checking each declared size against what is left."""

    def __init__(self, tail: Optional[memoryview]):
        self.tail = tail
        self.offset = 0

    def take(self, size: object, where: str) -> memoryview:
        if self.tail is None:
            raise BadRequest(f"{where}: binary_data_size given but the request has no "
                             "Inference-Header-Content-Length header")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"{where}.parameters.binary_data_size: expected a byte count, got {size!r}")
        if self.offset + size > len(self.tail):
            raise BadRequest(f"{where}: binary_data_size {size} runs past the end of the body "
                             f"({len(self.tail) - self.offset} bytes left)")
        chunk = self.tail[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def check_consumed(self) -> None:
        if self.tail is not None and self.offset != len(self.tail):
            raise BadRequest(f"{len(self.tail) - self.offset} bytes after the binary tensors belong to no input")


def decode_numbers(chunk: memoryview, datatype: str, count: int, where: str) -> np.ndarray:
    dtype = WIRE_DTYPES[datatype]
    if len(chunk) != count * dtype.itemsize:
        raise BadRequest(f"{where}: {count} {datatype} values need {count * dtype.itemsize} bytes, "
                         f"binary_data_size is {len(chunk)}")
    return np.frombuffer(chunk, dtype=dtype)


def decode_strings(chunk: memoryview, where: str) -> list:
    """BYTES elements as str: the models here compare them with string categories."""
    out, offset, end = [], 0, len(chunk)
    raw = bytes(chunk)
    while offset < end:
        if offset + 4 > end:
            raise BadRequest(f"{where}: truncated BYTES element length at byte {offset}")
        (n,) = _LEN.unpack_from(raw, offset)
        offset += 4
        if offset + n > end:
            raise BadRequest(f"{where}: BYTES element of {n} bytes runs past its binary_data_size")
        try:
            out.append(raw[offset:offset + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(f"{where}: BYTES element {len(out)} is not UTF-8 text") from None
        offset += n
    return out


def encode_values(values: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in values.ravel().tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(_LEN.pack(len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(values, dtype=WIRE_DTYPES[datatype]).tobytes()
