"""synthdata.prompts."""
