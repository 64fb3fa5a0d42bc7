#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz_results.c into tests/fuzz_corpus_{run_json,epochs_csv,
steps_csv,baseline}/ (committed; run this again only to change them): for each reader, the valid
file of a real run (tests/fuzz_results_seed/, from `ampbench run --modes fp32 --epochs 3
--train-limit 1000 --test-limit 200` and results/baselines/) and one variant per rule the reader
enforces (trailing data, a NUL byte, invalid UTF-8, a wrong field count, a bad number, ...)."""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
seed = os.path.join(here, "..", "tests", "fuzz_results_seed")
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests")


def read(name):
    with open(os.path.join(seed, name), "rb") as f:
        return f.read()


def write(corpus, cases):
    out = os.path.join(root, "fuzz_corpus_" + corpus)
    os.makedirs(out, exist_ok=True)
    for name, data in cases.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def json_variants(valid):
    doc = json.loads(valid)
    return {
        "valid": valid,
        "trailing-garbage": valid + b"\n{\"more\": 1}\n",
        "trailing-space": valid + b"  \n\n",
        "nul-byte": valid[:10] + b"\0" + valid[10:],
        "invalid-utf8": valid.replace(b"fp32", b"fp\xff2", 1),
        "truncated": valid[: len(valid) // 2],
        "empty": b"",
        "array": b"[1, 2, 3]",
        "deep": b"[" * 2000 + b"]" * 2000,
        "no-modes": json.dumps({k: v for k, v in doc.items() if k != "modes"}).encode(),
    }


run = read("run.json")
cases = json_variants(run)
doc = json.loads(run)
doc["modes"] = {"bad name\n": doc["modes"]["fp32"]}
cases["bad-mode-name"] = json.dumps(doc).encode()
write("run_json", cases)

def csv_variants(text, column, short_row, first, zero, bad):
    """The valid CSV and one variant per rule of its reader: a renamed header column, a short
    row, a zero epoch or step (row prefix `first` made `zero`), a bad number, a NUL byte, CRLF."""
    lines = text.split(b"\n")
    body = b"\n".join(lines[1:])
    return {
        "valid": text,
        "header-only": lines[0] + b"\n",
        "wrong-header": lines[0].replace(column, column[:-1], 1) + b"\n" + body,
        "short-row": text + short_row,
        "zero": text + lines[1].replace(first, zero, 1) + b"\n",
        "bad-number": text + lines[1].replace(first, bad, 1) + b"\n",
        "nul-byte": text[:20] + b"\0" + text[20:],
        "crlf": text.replace(b"\n", b"\r\n"),
        "empty": b"",
    }


epochs = read("epochs.csv")
cases = csv_variants(epochs, b"mode", b"fp32,4,1\n", b"fp32,1,", b"fp32,0,", b"fp32,4,x")
cases["bad-mode"] = epochs + epochs.split(b"\n")[1].replace(b"fp32", b"fp 32", 1) + b"\n"
write("epochs_csv", cases)
write("steps_csv", csv_variants(read("steps.csv"), b"loss_scale", b"fp32,1,99,0.5\n",
                                b"fp32,1,1,", b"fp32,1,0,", b"fp32,1,2,nan?"))

base = read("baseline.json")
cases = json_variants(base)
doc = json.loads(base)
first = next(iter(doc["modes"]))
bad = json.loads(base)
bad["modes"][first][0]["test_acc"] = "0.7"
cases["string-acc"] = json.dumps(bad).encode()
bad = json.loads(base)
bad["modes"][first][0]["epoch"] = 2
cases["epoch-order"] = json.dumps(bad).encode()
bad = json.loads(base)
bad["modes"][first][0]["test_acc"] = 1.5
cases["acc-range"] = json.dumps(bad).encode()
bad = json.loads(base)
bad["tool"] = "something-else"
cases["wrong-tool"] = json.dumps(bad).encode()
write("baseline", cases)
