#!/usr/bin/env python3
"""PyTorch cross-check of ampbench: builds the network of `ampbench export-init`'s layer table
in PyTorch (torch_bench.build_net: conv, ReLU, max pooling, global average pooling, batch norm,
residual add, linear, softmax cross-entropy), loads the exported initial weights by parameter
name, trains it with SGD with momentum on the exported batches, and writes a fixture with the
per-step losses, the first step's gradients (FP32), the batch norm running statistics after the
last step, plus the losses of PyTorch's CPU autocast (bfloat16) for reference.

    build/ampbench export-init --channels 2 --train-limit 640 --device cpu --out /tmp/init
    python3 tools/torch_crosscheck.py /tmp/init/init.json tests/fixtures/torch_crosscheck.json
    build/ampbench export-init --net lenet5 --train-limit 640 --device cpu --out /tmp/lenet5
    python3 tools/torch_crosscheck.py /tmp/lenet5/init.json tests/fixtures/torch_crosscheck_lenet5.json
    build/ampbench export-init --net resnet8 --lr 0.001 --train-limit 640 --device cpu --out /tmp/resnet8
    python3 tools/torch_crosscheck.py /tmp/resnet8/init.json tests/fixtures/torch_crosscheck_resnet8.json

(resnet8 at --lr 0.001: at 0.01 its 20 steps are chaotic, PyTorch against itself, FP32 against
FP64 or 1 thread against 2, ends 4e-4 apart in the loss and 5e-3 in the BN running statistics;
at 0.001 the two stay within 2e-7, and ampbench within 2e-7 of PyTorch.)

tests/test_torch_fixture.c compares ampbench with the fixtures; it needs no PyTorch.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import build_net  # noqa: E402  (installed beside this script)

# The seed network's table, for an init.json from before export-init wrote "net".
SEED_LAYERS = [
    {"kind": "conv", "name": "conv", "input": None, "kernel": 3, "stride": 1, "pad": 1,
     "bias": True, "init": "default"},
    {"kind": "relu", "name": "relu", "input": "conv"},
    {"kind": "linear", "name": "fc", "input": "relu", "bias": True, "init": "default"},
    {"kind": "softmax_xent", "name": "loss", "input": "fc"},
]


def read_idx(directory, stem):
    """An IDX file under either naming convention, raw or gzip."""
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            ndim = data[3]
            dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(f"{directory}: no {stem}[.gz]")


def table_of(init, images):
    """The layer table of init.json, or the seed network's for an older export."""
    if "net" in init:
        return init["net"]
    cfg = init["config"]
    if cfg.get("net", "seed") != "seed":
        sys.exit(f"torch_crosscheck.py: --net {cfg['net']}: init.json has no layer table "
                 "(re-export it with this ampbench)")
    layers = [dict(l) for l in SEED_LAYERS]
    layers[0]["width"] = int(cfg["channels"])
    layers[2]["width"] = 10
    h, w = images.shape[1:]
    return {"name": "seed", "input": [1, h, w], "classes": 10, "channels": int(cfg["channels"]),
            "layers": layers}


def f32_list(t):
    """A float32 tensor as a list of 9-significant-digit numbers: exact for FP32, about half the
    text of Python's 17-digit doubles."""
    return [float("%.9g" % v) for v in t.detach().flatten().tolist()]


def train(init, table, images, labels, autocast_dtype=None):
    cfg = init["config"]
    net = build_net(table)
    net.load_flat(init["params"])
    net.train()
    params = net.params_by_name()
    opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
    c, h, w = table["input"]
    losses, grads = [], None
    for idx in init["batches"]:
        x = torch.tensor(images[idx], dtype=torch.float32).reshape(len(idx), c, h, w) / 255.0
        y = torch.tensor(labels[idx], dtype=torch.long)
        opt.zero_grad()
        with torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        if grads is None:
            grads = {n: f32_list(p.grad) for n, p in params.items()}
        losses.append(loss.item())
        opt.step()
    running = {n: f32_list(b) for n, b in net.buffers_by_name().items()}
    return losses, grads, running


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("init", help="init.json written by ampbench export-init")
    ap.add_argument("out", help="fixture to write")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    with open(args.init) as f:
        init = json.load(f)
    cfg = init["config"]
    n = int(cfg["train_samples"])
    images = read_idx(cfg["data"], "train-images-idx3-ubyte")[:n]
    labels = read_idx(cfg["data"], "train-labels-idx1-ubyte")[:n]
    table = table_of(init, images)
    losses, grads, running = train(init, table, images, labels)
    bf16_losses, _, _ = train(init, table, images, labels, torch.bfloat16)
    fixture = {
        "tool": "ampbench-torch-crosscheck",
        "torch_version": torch.__version__,
        "config": {k: cfg[k] for k in ("net", "seed", "batch", "channels", "lr", "momentum",
                                       "train_samples") if k in cfg},
        "init_check": {k: v[:4] for k, v in init["params"].items()},
        "batches": init["batches"],
        "first_step": {"loss": losses[0], "grads": grads},
        "losses": losses,
        "autocast_bf16_losses": bf16_losses,
    }
    if running:
        fixture["bn_running_stats"] = running  # "<layer>.running_mean", "<layer>.running_var"
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    print(f"{args.out}: --net {table['name']}, {len(losses)} steps, first loss {losses[0]:.6f}, "
          f"{len(running)} running statistics, torch {torch.__version__}")


if __name__ == "__main__":
    main()
