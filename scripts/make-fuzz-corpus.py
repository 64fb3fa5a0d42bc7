#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz_idx.c into tests/fuzz_corpus/ (the files are committed;
run this again only to change them). A few small valid IDX files, raw and gzipped, and one
malformed file per validation rule of harness/data/idx.c. Deterministic: gzip mtime is 0."""
import gzip
import os
import random
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz_corpus")
os.makedirs(out, exist_ok=True)
rng = random.Random(1)


def idx(dims, payload=b"", rank=None, dtype=0x08, magic01=b"\0\0"):
    rank = len(dims) if rank is None else rank
    return magic01 + bytes([dtype, rank]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def noise(n):
    return bytes(rng.randrange(256) for _ in range(n))


files = {}
labels5 = idx([5], bytes([0, 1, 2, 3, 9]))
images2x2 = idx([3, 2, 2], bytes([0, 150, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
images28 = idx([2, 28, 28], noise(2 * 28 * 28))
files["valid-labels"] = labels5
files["valid-labels.gz"] = gz(labels5)
files["valid-images-3x2x2"] = images2x2
files["valid-images-3x2x2.gz"] = gz(images2x2)
files["valid-images-2x28x28"] = images28
files["valid-images-2x28x28.gz"] = gz(images28)
files["valid-rank2"] = idx([2, 3], bytes(range(6)))
files["label-out-of-range"] = idx([3], bytes([0, 1, 200]))
files["label-at-nclasses"] = idx([3], bytes([0, 9, 10]))  # 10 classes: 9 is fine, 10 is not
files["empty"] = b""
files["truncated-magic"] = b"\0\0\x08"
files["truncated-header"] = b"\0\0\x08\x03\0\0\0\x01\0\0"
files["bad-magic"] = idx([1, 1, 1], b"\x07", magic01=b"\x01\x02")
files["bad-type-float"] = idx([1, 1, 1], b"\0\0\0\0", dtype=0x0D)
files["bad-rank-4"] = idx([1, 1, 1, 1], b"\x07")
files["zero-dimension"] = idx([3, 0, 2])
files["dims-overflow"] = idx([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF])
files["dims-over-limit"] = idx([0x10000, 0x100, 0x100])
files["dims-at-limit"] = idx([0x8000, 0x100, 0x100], b"\x01\x02")  # 2^31 bytes declared
files["image-side-over-limit"] = idx([1, 1, 5000])
files["image-side-at-limit"] = idx([1, 1, 4096], noise(4096))
files["image-side-limit-plus-one"] = idx([1, 4097, 1])
files["truncated-payload"] = idx([60000, 28, 28], noise(10))
files["trailing-bytes"] = images2x2 + b"\0\0\0"
full = gz(images28)
files["truncated-gzip"] = full[: len(full) // 2]
corrupt = bytearray(full)
corrupt[len(corrupt) // 2] ^= 0xFF
files["corrupt-gzip"] = bytes(corrupt)
bad_crc = bytearray(gz(images2x2))
bad_crc[-8] ^= 0x01
files["bad-crc-gzip"] = bytes(bad_crc)
files["gzip-of-garbage"] = gz(b"not an IDX file\n")
files["gzip-trailing-garbage"] = gz(labels5) + b"garbage"
files["gzip-two-members"] = gz(labels5[:6]) + gz(labels5[6:])

for name, data in files.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
total = sum(len(d) for d in files.values())
print(f"{len(files)} files, {total} bytes in {out}")
