"""synthdata.pretrain."""
