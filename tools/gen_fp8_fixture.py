#!/usr/bin/env python3
"""Generate tests/fixtures/fp8_ml_dtypes.h, the FP8 conversion fixture of tests/test_fp8.c.

The expected values come from ml_dtypes (PyPI: float8_e4m3fn, float8_e5m2), an implementation
independent of harness/core/fp8.c:

  - the FP32 value of all 256 codes of each format (ml_dtypes' cast to float32, bit patterns);
  - a structured list of FP32 inputs (every representable value and its FP32 neighbours, every
    halfway case between neighbours and its FP32 neighbours, the subnormal range, the overflow
    thresholds, zeros, infinities, NaNs with several payloads, FP32 subnormals, powers of two
    over all exponents) with the expected byte of each under the four conversions (E4M3 and E5M2,
    FP8_SATFINITE and FP8_NOSAT);
  - a random stream of RANDOM_CHUNKS * 65536 FP32 inputs, generated from splitmix64 identically
    here and in the test (see random_inputs), stored as one FNV-1a 64 hash per chunk of 65536
    output bytes per conversion, so a mismatch names its chunk; --dump-chunk prints one.

ml_dtypes does not saturate: for FP8_SATFINITE the input is clipped to +-max before the cast
(as CUDA's __NV_SATFINITE gives +-max for overflows and infinities). A NaN input gives 0x7F in
the fixture, CUDA's canonical NaN (cuda_fp8.hpp canonicalizes the FP32 NaN first), after
checking that ml_dtypes gives a NaN there (it keeps the sign, and E5M2 gives 0x7E | sign).

Usage:
  python3 -m venv /tmp/venv-fp8 && /tmp/venv-fp8/bin/pip install ml_dtypes numpy
  /tmp/venv-fp8/bin/python tools/gen_fp8_fixture.py [--out tests/fixtures/fp8_ml_dtypes.h]
  /tmp/venv-fp8/bin/python tools/gen_fp8_fixture.py --dump-chunk e4m3 satfinite 17
"""
import argparse
import sys

try:
    import numpy as np
    import ml_dtypes
except ImportError as e:  # pragma: no cover
    sys.exit(f"gen_fp8_fixture: {e.name} is missing: pip install ml_dtypes numpy")

CHUNK = 65536
RANDOM_CHUNKS = 153                     # 10,027,008 random inputs
SEED = 0xF8F8_2026_0016_0001            # splitmix64 seed, also in tests/test_fp8.c
GOLDEN = 0x9E3779B97F4A7C15
FORMATS = {"e4m3": (ml_dtypes.float8_e4m3fn, 448.0), "e5m2": (ml_dtypes.float8_e5m2, 57344.0)}
CONVERSIONS = [("e4m3", "satfinite"), ("e4m3", "nosat"), ("e5m2", "satfinite"), ("e5m2", "nosat")]
M64 = (1 << 64) - 1


def random_inputs(first, count):
    """FP32 bit patterns of random inputs first .. first+count-1 (uint32 array).

    Element i takes r = splitmix64 output number i (state SEED + (i + 1) * GOLDEN), then by r & 3:
      0: the raw bits r >> 32 (every exponent, inf, NaN, FP32 subnormals);
      1, 2: sign bit (r >> 2) & 1, exponent 104 + ((r >> 3) % 40) (2^-23 .. 2^16: both formats'
         subnormal, normal and overflow ranges), mantissa (r >> 32) & 0x7FFFFF;
      3: as 1 and 2 with the mantissa's low 16 bits cleared (r >> 32) & 0x7F0000, which makes
         exact halfway cases frequent."""
    i = np.arange(first, first + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(SEED) + (i + np.uint64(1)) * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        r = z ^ (z >> np.uint64(31))
    mode = r & np.uint64(3)
    hi = (r >> np.uint64(32)).astype(np.uint32)
    sign = ((r >> np.uint64(2)) & np.uint64(1)).astype(np.uint32) << np.uint32(31)
    exp = (np.uint64(104) + ((r >> np.uint64(3)) % np.uint64(40))).astype(np.uint32) << np.uint32(23)
    mant = np.where(mode == np.uint64(3), hi & np.uint32(0x7F0000), hi & np.uint32(0x7FFFFF))
    built = sign | exp | mant
    return np.where(mode == np.uint64(0), hi, built).astype(np.uint32)


def convert(bits, fmt, sat):
    """Expected FP8 bytes of FP32 bit patterns under one conversion."""
    dtype, fmax = FORMATS[fmt]
    x = bits.view(np.float32)
    src = np.clip(x, np.float32(-fmax), np.float32(fmax)) if sat == "satfinite" else x
    out = src.astype(dtype).view(np.uint8).copy()
    nan_in = np.isnan(x)
    back = out.view(dtype).astype(np.float32)
    if not np.all(np.isnan(back[nan_in])):
        sys.exit("gen_fp8_fixture: ml_dtypes gave a non-NaN for a NaN input")
    out[nan_in] = 0x7F
    return out


def fnv1a_chunks(out):
    """FNV-1a 64 of each CHUNK-byte chunk of out (vectorized over the chunks)."""
    chunks = out.reshape(-1, CHUNK).astype(np.uint64)
    h = np.full(chunks.shape[0], 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for j in range(CHUNK):
            h = (h ^ chunks[:, j]) * prime
    return h


def f32(v):
    return np.float32(v)


def structured_inputs():
    """The structured FP32 inputs (uint32 bit patterns), duplicates removed, order kept."""
    vals = []
    inf = np.float32(np.inf)
    for fmt, (dtype, fmax) in FORMATS.items():
        codes = np.arange(0x80, dtype=np.uint8).view(dtype).astype(np.float32)
        finite = [c for c in codes if np.isfinite(c)]
        finite.append(f32(2.0 * finite[-1] - finite[-2]))   # the value one step above max
        for a, b in zip(finite, finite[1:]):
            mid = f32((np.float64(a) + np.float64(b)) / 2)
            for v in (a, mid):
                vals += [v, np.nextafter(v, -inf), np.nextafter(v, inf)]
        vals += [finite[-1], np.nextafter(finite[-1], inf)]
        sub = finite[1]
        vals += [f32(sub / 2), np.nextafter(f32(sub / 2), inf), f32(sub / 4), f32(3 * sub / 4)]
        vals += [f32(fmax), np.nextafter(f32(fmax), inf), f32(fmax * 2), f32(1e30)]
    for e in range(-149, 128):
        p = f32(2.0 ** e)
        vals += [p, np.nextafter(p, -inf), np.nextafter(p, inf)]
    pos = np.array(vals, dtype=np.float32).view(np.uint32)
    pos = pos & np.uint32(0x7FFFFFFF)
    specials = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                         0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7FA00000, 0x00000001,
                         0x007FFFFF, 0x80000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF],
                        dtype=np.uint32)
    allv = np.concatenate([specials, pos, pos | np.uint32(0x80000000)])
    _, first = np.unique(allv, return_index=True)
    return allv[np.sort(first)]


def c_array(name, ctype, values, fmt, per_line):
    lines = [f"static const {ctype} {name}[{len(values)}] = {{"]
    for k in range(0, len(values), per_line):
        lines.append("    " + ", ".join(fmt(v) for v in values[k:k + per_line]) + ",")
    lines.append("};")
    return "\n".join(lines)


def generate(path):
    rand_n = RANDOM_CHUNKS * CHUNK
    rand = random_inputs(0, rand_n)
    struct_in = structured_inputs()
    parts = [
        "/* tests/fixtures/fp8_ml_dtypes.h - generated by tools/gen_fp8_fixture.py from ml_dtypes "
        f"{ml_dtypes.__version__}",
        " * (numpy " + np.__version__ + "); do not edit: rerun the script. Read by tests/test_fp8.c. */",
        "#ifndef AMPBENCH_FP8_ML_DTYPES_H",
        "#define AMPBENCH_FP8_ML_DTYPES_H",
        "#include <stdint.h>",
        f"#define FP8FX_CHUNK {CHUNK}",
        f"#define FP8FX_RANDOM_CHUNKS {RANDOM_CHUNKS}",
        f"#define FP8FX_SEED UINT64_C(0x{SEED:016X})",
        f"#define FP8FX_STRUCT_N {len(struct_in)}",
        "/* conversions, in this order: e4m3 satfinite, e4m3 nosat, e5m2 satfinite, e5m2 nosat */",
    ]
    for fmt, (dtype, _) in FORMATS.items():
        dec = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float32).view(np.uint32)
        parts.append(f"/* FP32 bits of the 256 {fmt} codes */")
        parts.append(c_array(f"fp8fx_decode_{fmt}", "uint32_t", dec, lambda v: f"0x{int(v):08X}u", 8))
    parts.append(c_array("fp8fx_struct_in", "uint32_t", struct_in, lambda v: f"0x{int(v):08X}u", 8))
    for fmt, sat in CONVERSIONS:
        out = convert(struct_in, fmt, sat)
        parts.append(c_array(f"fp8fx_struct_{fmt}_{sat}", "uint8_t", out, lambda v: f"0x{int(v):02X}", 16))
    for fmt, sat in CONVERSIONS:
        h = fnv1a_chunks(convert(rand, fmt, sat))
        parts.append(c_array(f"fp8fx_random_{fmt}_{sat}", "uint64_t", h,
                             lambda v: f"UINT64_C(0x{int(v):016X})", 3))
    parts.append("#endif")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")
    print(f"gen_fp8_fixture: wrote {path}: {len(struct_in)} structured inputs, "
          f"{rand_n} random inputs in {RANDOM_CHUNKS} chunks")


def dump_chunk(fmt, sat, index):
    if fmt not in FORMATS or sat not in ("satfinite", "nosat"):
        sys.exit("gen_fp8_fixture: --dump-chunk wants FORMAT (e4m3|e5m2) SAT (satfinite|nosat) INDEX")
    if not 0 <= index < RANDOM_CHUNKS:
        sys.exit(f"gen_fp8_fixture: --dump-chunk INDEX must be 0..{RANDOM_CHUNKS - 1}")
    bits = random_inputs(index * CHUNK, CHUNK)
    out = convert(bits, fmt, sat)
    for k in range(CHUNK):
        print(f"{index * CHUNK + k} 0x{int(bits[k]):08X} 0x{int(out[k]):02X}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See docs/NUMERICS.md, section FP8.")
    ap.add_argument("--out", default="tests/fixtures/fp8_ml_dtypes.h",
                    help="the header to write (default: %(default)s)")
    ap.add_argument("--dump-chunk", nargs=3, metavar=("FORMAT", "SAT", "INDEX"),
                    help="print one random chunk (index, input bits, expected byte per line) "
                         "instead of writing the fixture; FORMAT e4m3|e5m2, SAT satfinite|nosat")
    a = ap.parse_args()
    if a.dump_chunk:
        fmt, sat, index = a.dump_chunk
        try:
            index = int(index)
        except ValueError:
            sys.exit(f"gen_fp8_fixture: --dump-chunk INDEX is not a number: {index}")
        dump_chunk(fmt, sat, index)
    else:
        generate(a.out)


if __name__ == "__main__":
    main()
