"""synthdata.filter."""
