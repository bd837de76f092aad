#!/usr/bin/env python3
"""Python reads what trainer_core::save writes: torch.jit.load runs model.pt
and gives trainer_core::predict's answer, and model_state.pt (torch.load) fills
an nn.Sequential of the same shape. Exits 77 (skipped) without Python torch.

    check_torchscript.py EXPORT_MODEL_BINARY
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as error:
    print(f"skipped: {error} (Debian: python3-torch)")
    sys.exit(77)

with tempfile.TemporaryDirectory(prefix="melissa-torchscript-") as work:
    subprocess.run([sys.argv[1], work], check=True)
    inputs = torch.from_numpy(np.fromfile(os.path.join(work, "probe_inputs.bin"), np.float32)).view(7, 5)
    expected = torch.from_numpy(np.fromfile(os.path.join(work, "probe_outputs.bin"), np.float32)).view(7, 120)

    model = torch.jit.load(os.path.join(work, "model.pt"))
    with torch.no_grad():
        output = model(inputs)
        row = model(inputs[0])
    assert output.shape == (7, 120), output.shape
    assert row.shape == (120,), row.shape
    assert torch.allclose(output, expected, atol=1e-5, rtol=1e-5), (output - expected).abs().max()
    assert model.input_dim == 5 and model.output_dim == 120

    state = torch.load(os.path.join(work, "model_state.pt"))
    mean, std = float(state.pop("output_mean")), float(state.pop("output_std"))
    network = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.SiLU(),
                                  torch.nn.Linear(16, 16), torch.nn.SiLU(),
                                  torch.nn.Linear(16, 120))
    network.load_state_dict(state)  # strict: the names and shapes match
    with torch.no_grad():
        rebuilt = network(inputs) * std + mean
    assert torch.allclose(rebuilt, expected, atol=1e-4, rtol=1e-5), (rebuilt - expected).abs().max()
print("torch.jit.load and torch.load read the trainer's files")
