#!/usr/bin/env python3
"""PyTorch eager baseline of the seed network, for scripts/device-check.sh.

Conv2d(1 -> C, 3x3, padding 1) -> ReLU -> Flatten -> Linear(C*28*28 -> 10) -> cross-entropy,
SGD(lr 0.01, momentum 0.9), on synthetic 28x28 images. --mode fp32 is true FP32 (TF32 off);
--mode amp is torch.autocast(float16) with torch.amp.GradScaler, the usual eager AMP loop.

Two figures, both printed as one JSON line:
  samples_per_s          each step copies its batch from host memory to the GPU and reads the
                         loss back (loss.item()), as ampbench's training loop does;
  samples_per_s_resident the batches already on the GPU, no per-step synchronisation.
"""
import argparse
import json
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["amp", "fp32"], default="amp")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=30)
    a = p.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"error": "no torch: %s" % e}))
        return 1
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch.cuda.is_available() is False"}))
        return 1
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1)
    amp = a.mode == "amp"
    nbatches = 16
    host_x = torch.rand(nbatches, a.batch, 1, 28, 28)
    host_y = torch.randint(0, 10, (nbatches, a.batch))
    dev_x, dev_y = host_x.to(dev), host_y.to(dev)

    def build():
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, a.channels, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(a.channels * 28 * 28, 10)).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        return model, opt, scaler

    def step(model, opt, scaler, x, y):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    def timed(resident):
        model, opt, scaler = build()
        for i in range(a.warmup):
            step(model, opt, scaler, dev_x[i % nbatches], dev_y[i % nbatches])
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(a.steps):
            if resident:
                step(model, opt, scaler, dev_x[i % nbatches], dev_y[i % nbatches])
            else:
                x = host_x[i % nbatches].to(dev)
                y = host_y[i % nbatches].to(dev)
                step(model, opt, scaler, x, y).item()
        torch.cuda.synchronize()
        return a.steps * a.batch / (time.perf_counter() - t0)

    torch.cuda.reset_peak_memory_stats()
    sps = timed(False)
    peak = torch.cuda.max_memory_allocated()
    sps_resident = timed(True)
    print(json.dumps({
        "mode": a.mode, "batch": a.batch, "channels": a.channels, "steps": a.steps,
        "samples_per_s": round(sps, 1), "samples_per_s_resident": round(sps_resident, 1),
        "peak_memory_allocated": peak, "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
