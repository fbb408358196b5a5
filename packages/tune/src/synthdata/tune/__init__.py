"""synthdata.tune."""
