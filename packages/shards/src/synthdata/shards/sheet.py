"""Contact sheets: a labelled row of thumbnails per class."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[Image.Image]]],
    *,
    thumb: int = 64,
    per_row: int = 8,
    label_width: int = 160,
    pad: int = 2,
) -> Image.Image:
    """Draw one row per ``(label, images)`` pair: the label on the left, up to ``per_row`` thumbnails."""
    if not rows:
        raise ValueError("contact_sheet needs at least one row")
    font = ImageFont.load_default()
    width = label_width + per_row * (thumb + pad) + pad
    height = len(rows) * (thumb + pad) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        y = pad + r * (thumb + pad)
        draw.text(
            (4, y + thumb // 2 - 6), _fit(label, draw, font, label_width - 8), fill=(0, 0, 0), font=font
        )
        for c, image in enumerate(list(images)[:per_row]):
            tile = image.convert("RGB").copy()
            tile.thumbnail((thumb, thumb))
            sheet.paste(tile, (label_width + pad + c * (thumb + pad), y))
    return sheet


def _fit(text: str, draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def group_by_class(
    samples: Iterable[tuple[int, Image.Image]], classes: Sequence[str], per_class: int
) -> list[tuple[str, list[Image.Image]]]:
    """Collect up to ``per_class`` images for each class index, labelled ``index name``."""
    buckets: dict[int, list[Image.Image]] = {}
    for cls, image in samples:
        bucket = buckets.setdefault(cls, [])
        if len(bucket) < per_class:
            bucket.append(image)
    return [(f"{i} {classes[i]}" if i < len(classes) else str(i), buckets[i]) for i in sorted(buckets)]
