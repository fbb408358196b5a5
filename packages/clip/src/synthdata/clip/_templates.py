"""Generic CLIP prompt templates, for data sets without their own."""

# "a photo of a {}." plus the seven ImageNet templates that OpenAI's CLIP notebook found to be the best
# small ensemble; each holds one "{}" for the class name.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
