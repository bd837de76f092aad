"""A small convolutional decoder for the heat example, scripted to TorchScript.

    /usr/bin/python3 examples/heat-cnn/make_model.py studies/heat-cnn/decoder.pt

Input: a batch [B, 6] of encoded rows (the 5 parameters mapped to [0, 1], then
time / training.time_steps); output: [B, 64, 64] temperatures in normalized
units (the trainer subtracts output_mean and divides by output_std). A linear
layer lifts the 6 inputs to 32 feature maps of 8 x 8, and three transposed
convolutions double the resolution to 16, 32, then 64.
"""
import os
import sys

import torch


class HeatDecoder(torch.nn.Module):
    def __init__(self, inputs: int = 6, channels: int = 32):
        super().__init__()
        self.channels = channels
        self.lift = torch.nn.Linear(inputs, channels * 8 * 8)
        self.up1 = torch.nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)  # 16 x 16
        self.up2 = torch.nn.ConvTranspose2d(channels, channels // 2, 4, stride=2, padding=1)  # 32 x 32
        self.up3 = torch.nn.ConvTranspose2d(channels // 2, 1, 4, stride=2, padding=1)  # 64 x 64

    def forward(self, x):
        h = torch.nn.functional.gelu(self.lift(x)).reshape(x.size(0), self.channels, 8, 8)
        h = torch.nn.functional.gelu(self.up1(h))
        h = torch.nn.functional.gelu(self.up2(h))
        return self.up3(h).reshape(x.size(0), 64, 64)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "studies/heat-cnn/decoder.pt"
    torch.manual_seed(0)
    model = torch.jit.script(HeatDecoder())
    assert model(torch.zeros(2, 6)).shape == (2, 64, 64)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save(path)
    count = sum(p.numel() for p in model.parameters())
    print(f"{path}: TorchScript HeatDecoder, {count} parameters")


if __name__ == "__main__":
    main()
