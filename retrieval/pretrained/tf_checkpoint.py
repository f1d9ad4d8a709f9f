"""Read a TensorFlow checkpoint bundle (``NAME.index`` + ``NAME.data-00000-of-00001``) without TensorFlow.

The format (TensorFlow's ``tensor_bundle``, REFERENCE §9):

- ``.index`` is an SSTable (LevelDB's table format). It ends in a 48-byte footer: two block handles (the
  meta-index and the index block, each two varints: offset, size), zero padding to 40 bytes, then the 8-byte
  magic 0xdb4775248b80fb57 (little-endian). Every block is followed by a 5-byte trailer (compression type, CRC).
  A block is a run of prefix-compressed entries — ``varint shared, varint non_shared, varint value_size,
  key[shared:], value`` — then ``uint32`` restart offsets and their ``uint32`` count. The index block maps the
  last key of each data block to that block's handle.
- Each data-block value is a ``BundleEntryProto`` (protobuf): 1 dtype, 2 shape (``TensorShapeProto``: repeated
  field 2 ``Dim {1: size}``), 3 shard id, 4 offset, 5 size, 6 crc32c; the empty key holds the bundle header.
- ``.data-SSSSS-of-NNNNN`` shards hold the raw little-endian tensor bytes at (offset, size).

Only what checkpoints of dense float / int tensors need is implemented; a compressed block, a sliced tensor or
an unknown dtype is refused with the file named.

Example:
    >>> tensors = read_checkpoint("musicnn/MTT_musicnn/")  # doctest: +SKIP
    >>> tensors["dense_1/kernel"].shape  # doctest: +SKIP
    (200, 50)
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from retrieval.errors import DataError

__all__ = ["read_checkpoint"]

_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
_TRAILER_BYTES = 5
_NO_COMPRESSION = 0
# TensorFlow DataType enum → numpy little-endian dtype
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 19: "<f2"}
# protobuf wire types
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a checkpoint, by variable name.

    Args:
        prefix: the bundle's prefix — ``folder/model`` for ``folder/model.index``; a folder means the bundle
            named ``.index`` inside it (how the musicnn package ships its checkpoints).

    Returns:
        {name: array} with the checkpoint's dtypes and shapes (optimizer slots such as ``…/Adam`` included).

    Raises:
        DataError: a missing or malformed file (named), a CRC-less compressed block, or a sliced tensor.
    """
    prefix = Path(prefix)
    index = prefix / ".index" if prefix.is_dir() else prefix.with_name(prefix.name + ".index")
    try:
        table = index.read_bytes()
    except OSError as error:
        raise DataError(index, f"cannot read the checkpoint index ({error.strerror or error})") from error
    entries = _read_table(index, table)
    header = entries.pop(b"", None)
    if header is None:
        raise DataError(index, "no bundle header (empty key): not a TensorFlow checkpoint index")
    shards = _fields(header).get(1, [1])[0]  # BundleHeaderProto.num_shards
    data = [index.with_name(index.name.removesuffix(".index") + f".data-{shard:05d}-of-{shards:05d}")
            for shard in range(shards)]
    blobs: dict[int, bytes] = {}
    tensors = {}
    for key, value in entries.items():
        name = key.decode()
        fields = _fields(value)
        if 7 in fields:
            raise DataError(index, f"tensor {name!r} is stored in slices, which this reader does not support")
        dtype = _DTYPES.get(fields.get(1, [0])[0])
        if dtype is None:
            raise DataError(index, f"tensor {name!r} has TensorFlow dtype {fields.get(1, [0])[0]}, which this "
                            "reader does not support")
        shape = tuple(_fields(dim).get(1, [0])[0] for dim in _fields(fields[2][0]).get(2, [])) if 2 in fields else ()
        shard, offset, size = (fields.get(n, [0])[0] for n in (3, 4, 5))
        if shard not in blobs:
            try:
                blobs[shard] = data[shard].read_bytes()
            except (OSError, IndexError) as error:
                raise DataError(data[min(shard, len(data) - 1)], "cannot read the checkpoint's data shard") from error
        raw = blobs[shard][offset:offset + size]
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if len(raw) != size or size != expected:
            raise DataError(data[shard], f"tensor {name!r}: {len(raw)} bytes at offset {offset}, expected "
                            f"{expected} for shape {shape}; the file is truncated or damaged")
        tensors[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return tensors


def _read_table(path: Path, table: bytes) -> dict[bytes, bytes]:
    """Every (key, value) of an uncompressed SSTable."""
    if len(table) < _FOOTER_BYTES or struct.unpack("<Q", table[-8:])[0] != _MAGIC:
        raise DataError(path, "no SSTable footer magic: not a TensorFlow checkpoint index (or truncated)")
    footer = table[-_FOOTER_BYTES:]
    _, pos = _varint(footer, 0)  # meta-index handle: unused
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    entries: dict[bytes, bytes] = {}
    for _, handle in _block(path, table, index_offset, index_size):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        entries.update(_block(path, table, offset, size))
    return entries


def _block(path: Path, table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The entries of the block at (offset, size), keys expanded from their shared prefixes."""
    if offset + size + _TRAILER_BYTES > len(table):
        raise DataError(path, f"block at {offset} (+{size}) runs past the end of the file; it is truncated")
    if table[offset + size] != _NO_COMPRESSION:
        raise DataError(path, f"block at {offset} is compressed (type {table[offset + size]}); unsupported")
    block = table[offset:offset + size]
    restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 * (restarts + 1)
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + length]))
        pos += length
    return entries


def _varint(buffer: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at ``pos`` → (value, position after it)."""
    value = shift = 0
    while True:
        byte = buffer[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(message: bytes) -> dict[int, list]:
    """A protobuf message's fields: {number: [varint int | bytes, ...]} (fixed-width values as ints)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(message):
        tag, pos = _varint(message, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, pos = _varint(message, pos)
        elif wire == _BYTES:
            length, pos = _varint(message, pos)
            value, pos = message[pos:pos + length], pos + length
        elif wire == _FIXED32:
            value, pos = struct.unpack("<I", message[pos:pos + 4])[0], pos + 4
        elif wire == _FIXED64:
            value, pos = struct.unpack("<Q", message[pos:pos + 8])[0], pos + 8
        else:
            raise ValueError(f"protobuf wire type {wire} is not used by checkpoint entries")
        fields.setdefault(number, []).append(value)
    return fields
