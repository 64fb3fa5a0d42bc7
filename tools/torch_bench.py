#!/usr/bin/env python3
"""PyTorch side of `ampbench bench`: trains the seed network (conv3x3 -> ReLU -> FC -> softmax
cross-entropy, SGD with momentum 0.9, lr 0.01) in PyTorch eager mode on synthetic 28x28 batches
and prints, as one JSON line, the median training samples/s of each requested cell.

    python3 tools/torch_bench.py '[{"recipe": "fp32", "batch": 32, "channels": 16}]'

Recipes: fp32 (FP32 eager), bf16 (autocast bfloat16; CPU), amp (autocast float16 + GradScaler;
CUDA only). The device is CUDA when available, else the CPU with torch.set_num_threads(threads).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def measure(cell, device, seconds=0.6, windows=3):
    channels, batch = cell["channels"], cell["batch"]
    conv = torch.nn.Conv2d(1, channels, 3, padding=1).to(device)
    fc = torch.nn.Linear(channels * 28 * 28, 10).to(device)
    params = list(conv.parameters()) + list(fc.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    recipe = cell["recipe"]
    dtype = {"bf16": torch.bfloat16, "amp": torch.float16}.get(recipe)
    scaler = torch.cuda.amp.GradScaler() if recipe == "amp" else None

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = fc(F.relu(conv(x)).flatten(1))
        loss = F.cross_entropy(logits.float(), y)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        loss.item()  # one host synchronisation per step, as ampbench's loss read

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    steps = 0
    while time.perf_counter() - t0 < seconds / windows:
        step()
        steps += 1
    steps = max(steps, 3)
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return sorted(rates)[len(rates) // 2]


def main():
    cells = json.loads(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = []
    for cell in cells:
        ok = not (cell["recipe"] == "amp" and device.type != "cuda")
        out.append(dict(cell, samples_per_s=measure(cell, device) if ok else None))
    print(json.dumps({"torch": torch.__version__, "device": device.type,
                      "threads": torch.get_num_threads(), "cells": out}))


if __name__ == "__main__":
    main()
