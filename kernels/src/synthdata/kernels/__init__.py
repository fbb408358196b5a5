"""synthdata.kernels: fused GPU kernels with PyTorch fallbacks."""
