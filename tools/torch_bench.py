#!/usr/bin/env python3
"""PyTorch side of `ampbench bench`: trains the networks the bench ran, built from ampbench's
layer tables (see build_net), in PyTorch eager mode on synthetic batches of the data set's shape
(SGD with momentum 0.9, lr 0.01) and prints, as one JSON line, the median training samples/s of
each requested cell.

    python3 tools/torch_bench.py SPEC.json

SPEC.json (ampbench bench writes it as torch_spec.json in its results folder):

    {"device": "cpu", "threads": 2,
     "tables": {"seed/c16": <layer table>, ...},
     "cells": [{"net": "seed", "table": "seed/c16", "recipe": "fp32", "batch": 32,
                "channels": 16}, ...]}

A layer table is what `ampbench nets --json NAME` prints and `ampbench export-init` writes under
"net": {"name", "input": [c, h, w], "classes", "channels", "layers": [...]}.

Recipes: fp32 (FP32 eager), bf16 (autocast bfloat16; CPU), amp (autocast float16 + GradScaler;
CUDA only). The device is the one ampbench ran on ("cpu", or "cuda" when PyTorch has CUDA);
on the CPU PyTorch runs torch.set_num_threads(threads): the threads ampbench's backend used.
The output's "threads" is torch.get_num_threads() after that.

build_net() is also what tools/torch_crosscheck.py trains.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


class TableNet(torch.nn.Module):
    """An nn.Module from an ampbench layer table: the layers in forward order, each reading the
    output of its "input" layer (None: the model's input); an add also reads its "skip" layer.
    forward(x) returns the logits, the input of the final softmax_xent layer.

    Parameters are registered in the table's order as "<layer>.weight" and "<layer>.bias" (a
    batch norm's gamma and beta), buffers as "<layer>.running_mean", "<layer>.running_var":
    params_by_name() and buffers_by_name() give them under those names."""

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.mods = torch.nn.ModuleList()
        self.plan = []  # (layer dict, index into self.mods or None)
        shapes = {None: tuple(table["input"])}
        layers = table["layers"]
        for i, layer in enumerate(layers):
            kind, name = layer["kind"], layer["name"]
            if name in shapes:
                raise ValueError(f"layer table {table['name']}: {name} named twice")
            src = layer.get("input")
            if src not in shapes:
                raise ValueError(f"layer table {table['name']}: {name} reads {src}, not an earlier layer")
            c, h, w = shapes[src]
            mod = None
            if kind == "conv":
                k, s, p = layer["kernel"], layer["stride"], layer["pad"]
                mod = torch.nn.Conv2d(c, layer["width"], k, stride=s, padding=p, bias=layer["bias"])
                out = (layer["width"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
            elif kind == "relu":
                out = (c, h, w)
            elif kind == "maxpool":
                mod = torch.nn.MaxPool2d(2)
                out = (c, h // 2, w // 2)
            elif kind == "avgpool":
                mod = torch.nn.AdaptiveAvgPool2d(1)
                out = (c, 1, 1)
            elif kind == "batchnorm":
                mod = torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
                out = (c, h, w)
            elif kind == "add":
                if shapes.get(layer["skip"]) != (c, h, w):
                    raise ValueError(f"layer table {table['name']}: {name} adds {layer['skip']} "
                                     f"of shape {shapes.get(layer['skip'])} to {(c, h, w)}")
                out = (c, h, w)
            elif kind == "linear":
                mod = torch.nn.Linear(c * h * w, layer["width"], bias=layer["bias"])
                out = (layer["width"], 1, 1)
            elif kind == "softmax_xent":
                if i + 1 != len(layers) or c * h * w != table["classes"]:
                    raise ValueError(f"layer table {table['name']}: {name}: the loss must be last, "
                                     f"over {table['classes']} classes")
                out = (c, h, w)
            else:
                raise ValueError(f"layer table {table['name']}: {name}: unknown kind {kind}")
            if mod is not None:
                self.mods.append(mod)
            self.plan.append((layer, len(self.mods) - 1 if mod is not None else None))
            shapes[name] = out
        if not layers or layers[-1]["kind"] != "softmax_xent":
            raise ValueError(f"layer table {table['name']}: no softmax_xent loss at the end")

    def forward(self, x):
        acts = {None: x}
        for layer, m in self.plan:
            kind = layer["kind"]
            inp = acts[layer.get("input")]
            if kind == "relu":
                y = F.relu(inp)
            elif kind == "add":
                y = inp + acts[layer["skip"]]
            elif kind == "linear":
                y = self.mods[m](inp.flatten(1)).reshape(inp.shape[0], -1, 1, 1)
            elif kind == "softmax_xent":
                return inp.flatten(1)
            else:
                y = self.mods[m](inp)
            acts[layer["name"]] = y
        raise AssertionError("unreachable: the table ends in its loss")

    def _named(self, what):
        out = {}
        for layer, m in self.plan:
            if m is None:
                continue
            for key, t in getattr(self.mods[m], what)(recurse=False):
                if key == "num_batches_tracked":
                    continue
                out[f"{layer['name']}.{key}"] = t
        return out

    def params_by_name(self):
        return self._named("named_parameters")

    def buffers_by_name(self):
        return self._named("named_buffers")

    def load_flat(self, params):
        """Copies flat FP32 lists {"<layer>.weight": [...], ...} (ampbench export-init's
        "params") into the parameters; every parameter must be given, with its size."""
        mine = self.params_by_name()
        missing = sorted(set(mine) - set(params))
        extra = sorted(set(params) - set(mine))
        if missing or extra:
            raise ValueError(f"initial weights: missing {missing}, unknown {extra}")
        with torch.no_grad():
            for name, p in mine.items():
                v = torch.tensor(params[name], dtype=torch.float32)
                if v.numel() != p.numel():
                    raise ValueError(f"initial weights: {name} has {v.numel()} values, "
                                     f"PyTorch's has {p.numel()}")
                p.copy_(v.reshape(p.shape))


def build_net(table, device=None):
    """The nn.Module of an ampbench layer table (see TableNet)."""
    net = TableNet(table)
    return net.to(device) if device is not None else net


def measure(cell, table, device, seconds=0.6, windows=3):
    batch = cell["batch"]
    net = build_net(table, device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, *table["input"], device=device)
    y = torch.randint(0, table["classes"], (batch,), device=device)
    recipe = cell["recipe"]
    dtype = {"bf16": torch.bfloat16, "amp": torch.float16}.get(recipe)
    scaler = torch.cuda.amp.GradScaler() if recipe == "amp" else None

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = net(x)
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
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    want = spec.get("device", "cpu")
    if want == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_bench.py: ampbench ran on cuda, this PyTorch has no usable CUDA device")
    device = torch.device("cuda" if want == "cuda" else "cpu")
    threads = int(spec.get("threads", 0))
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = []
    for cell in spec["cells"]:
        table = spec["tables"][cell["table"]]
        ok = not (cell["recipe"] == "amp" and device.type != "cuda")
        res = {k: v for k, v in cell.items() if k != "table"}
        res["samples_per_s"] = measure(cell, table, device) if ok else None
        out.append(res)
    print(json.dumps({"torch": torch.__version__, "device": device.type,
                      "threads": torch.get_num_threads(), "requested_threads": threads,
                      "cells": out}))


if __name__ == "__main__":
    main()
