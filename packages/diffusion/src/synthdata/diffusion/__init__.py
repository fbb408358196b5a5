"""synthdata.diffusion."""
