"""synthdata.clip: shared CLIP plumbing (model loading, zero-shot heads, features)."""
