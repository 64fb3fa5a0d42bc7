#!/usr/bin/env python3
"""PyTorch cross-check of ampbench: trains the seed network (conv3x3 -> ReLU -> FC -> softmax
cross-entropy, SGD with momentum) in PyTorch from the initial weights and batches that
`ampbench export-init` wrote, and writes a fixture with the per-step losses and the first step's
gradients (FP32), plus the losses of PyTorch's CPU autocast (bfloat16) for reference.

    build/ampbench export-init --channels 2 --train-limit 640 --device cpu --out /tmp/init
    python3 tools/torch_crosscheck.py /tmp/init/init.json tests/fixtures/torch_crosscheck.json

tests/test_torch_fixture.c compares ampbench with the fixture; it needs no PyTorch.
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


def build(init, channels, h, w):
    conv = torch.nn.Conv2d(1, channels, 3, padding=1)
    fc = torch.nn.Linear(channels * h * w, 10)
    p = init["params"]
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(p["conv.weight"], dtype=torch.float32).reshape(conv.weight.shape))
        conv.bias.copy_(torch.tensor(p["conv.bias"], dtype=torch.float32))
        fc.weight.copy_(torch.tensor(p["fc.weight"], dtype=torch.float32).reshape(fc.weight.shape))
        fc.bias.copy_(torch.tensor(p["fc.bias"], dtype=torch.float32))
    return conv, fc


def train(init, images, labels, autocast_dtype=None):
    cfg = init["config"]
    h, w = images.shape[1:]
    conv, fc = build(init, int(cfg["channels"]), h, w)
    params = [conv.weight, conv.bias, fc.weight, fc.bias]
    opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"])
    losses, grads = [], None
    for idx in init["batches"]:
        x = torch.tensor(images[idx], dtype=torch.float32).unsqueeze(1) / 255.0
        y = torch.tensor(labels[idx], dtype=torch.long)
        opt.zero_grad()
        with torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = fc(F.relu(conv(x)).flatten(1))
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        if grads is None:
            names = ["conv.weight", "conv.bias", "fc.weight", "fc.bias"]
            grads = {n: p.grad.detach().flatten().tolist() for n, p in zip(names, params)}
        losses.append(loss.item())
        opt.step()
    return losses, grads


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
    if cfg.get("net", "seed") != "seed":
        sys.exit(f"torch_crosscheck.py: {args.init}: --net {cfg['net']}: only the seed network is built here")
    n = int(cfg["train_samples"])
    images = read_idx(cfg["data"], "train-images-idx3-ubyte")[:n]
    labels = read_idx(cfg["data"], "train-labels-idx1-ubyte")[:n]
    losses, grads = train(init, images, labels)
    bf16_losses, _ = train(init, images, labels, torch.bfloat16)
    fixture = {
        "tool": "ampbench-torch-crosscheck",
        "torch_version": torch.__version__,
        "config": {k: cfg[k] for k in ("seed", "batch", "channels", "lr", "momentum", "train_samples")},
        "init_check": {k: v[:4] for k, v in init["params"].items()},
        "batches": init["batches"],
        "first_step": {"loss": losses[0], "grads": grads},
        "losses": losses,
        "autocast_bf16_losses": bf16_losses,
    }
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    print(f"{args.out}: {len(losses)} steps, first loss {losses[0]:.6f}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
