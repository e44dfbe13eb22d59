"""Draw the ten digits at 28 pixels with Pillow's own font, one transparent PNG each (digits/0.png ...
digits/9.png): the ten-goal example of docs/goals.md (`nca train examples/digits --size 28 --pad 8`)."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 28  # pixels, as MNIST's digits


def draw_digit(digit: int, font: ImageFont.FreeTypeFont) -> Image.Image:
    """One dark digit centred on a transparent SIZE x SIZE picture."""
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    draw.text(((SIZE - (right - left)) / 2 - left, (SIZE - (bottom - top)) / 2 - top), str(digit),
              font=font, fill=(30, 30, 30, 255))
    return image


if __name__ == "__main__":
    folder = Path(__file__).with_name("digits")
    folder.mkdir(exist_ok=True)
    font = ImageFont.load_default(size=SIZE)
    for digit in range(10):
        draw_digit(digit, font).save(folder / f"{digit}.png")
