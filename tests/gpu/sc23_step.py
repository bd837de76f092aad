"""The SC23 full-scale step in PyTorch-Python on the same GPU, and the HBM bound.

Prints JSON lines: the same MLP (6 -> 256 -> 256 -> 1,000,000, ReLU), batch 10,
MSE, torch.optim.Adam (its default: foreach on CUDA) and Adam(fused=True),
each step from a host batch (pinned, copied non-blocking) and ending with
loss.item() as melissa-caf's step does; then the device-to-device copy
bandwidth (bytes read + written) and the bound it gives: the step must at
least read the output layer's weights twice (forward, input gradient), write
their gradient, and Adam must read parameters, gradients and both moments
and write three of them back: 40 bytes per float32 parameter.
"""
import argparse
import json
import time

import torch


def step_rate(fused, args, device):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, args.outputs)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    batches = [(torch.rand(args.batch, 6).pin_memory(), torch.rand(args.batch, args.outputs).pin_memory())
               for _ in range(4)]

    def one(k):
        x, y = batches[k % 4]
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for k in range(args.warmup):
        one(k)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(args.steps):
        one(k)
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    return params, {"impl": "pytorch-adam-fused" if fused else "pytorch-adam", "device": str(device),
                    "parameters": params, "batch": args.batch, "steps": args.steps,
                    "samples_per_s": args.steps * args.batch / seconds, "ms_per_step": 1e3 * seconds / args.steps}


def copy_bandwidth(device, size=1 << 28, repeats=20):
    a = torch.empty(size, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(repeats):
        b.copy_(a)
    end.record()
    torch.cuda.synchronize()
    seconds = begin.elapsed_time(end) / 1e3 / repeats
    return 2 * a.numel() * a.element_size() / seconds  # bytes read + written per second


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--outputs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda")
    params = 0
    for fused in (False, True):
        params, row = step_rate(fused, args, device)
        print(json.dumps(row), flush=True)
    bandwidth = copy_bandwidth(device)
    seconds = 40.0 * params / bandwidth
    print(json.dumps({"impl": "hbm-bound", "device": str(device), "parameters": params,
                      "samples_per_s": args.batch / seconds, "ms_per_step": 1e3 * seconds,
                      "note": f"40 B x {params} parameters at {bandwidth / 1e12:.2f} TB/s copy bandwidth"}))


if __name__ == "__main__":
    main()
