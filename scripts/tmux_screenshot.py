"""A PNG of what a tmux pane shows, colors and bold included: how the README's `swarmml top` picture is made.

    tmux new-session -d -s top -x 120 -y 40 'swarmml top ml'
    sleep 8 && python3 scripts/tmux_screenshot.py top scripts/results/top.png

The pane's text comes from `tmux capture-pane -e` (with its escape sequences); rich parses them, and
Pillow (which matplotlib brings) draws each character on a grid in DejaVu Sans Mono.
"""
import argparse
import subprocess
import sys

from PIL import Image, ImageDraw, ImageFont
from rich.color import Color
from rich.console import Console
from rich.text import Text

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
BACKGROUND, FOREGROUND = (24, 24, 27), (220, 220, 220)
SIZE, PAD = 15, 12


def capture(target: str) -> list[str]:
    out = subprocess.run(["tmux", "capture-pane", "-e", "-p", "-t", target], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"tmux_screenshot: {out.stderr.strip() or 'capture-pane failed'}")
    lines = out.stdout.rstrip("\n").split("\n")
    while lines and not Text.from_ansi(lines[-1]).plain.strip():
        lines.pop()
    return lines


def rgb(color: Color | None, default):
    if color is None or color.is_default:
        return default
    c = color.get_truecolor()
    return (c.red, c.green, c.blue)


def render(lines: list[str], path: str) -> None:
    regular = ImageFont.truetype(f"{FONT_DIR}/DejaVuSansMono.ttf", SIZE)
    bold = ImageFont.truetype(f"{FONT_DIR}/DejaVuSansMono-Bold.ttf", SIZE)
    cell_w = round(regular.getlength("M"))
    cell_h = sum(regular.getmetrics())  # ascent + descent: box-drawing lines meet from row to row
    texts = [Text.from_ansi(x) for x in lines]
    width = max(len(t.plain) for t in texts)
    img = Image.new("RGB", (2 * PAD + width * cell_w, 2 * PAD + len(texts) * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(img)
    console = Console(width=width + 1, color_system="truecolor")
    for row, text in enumerate(texts):
        y, col = PAD + row * cell_h, 0
        for seg in text.render(console):
            style = seg.style
            fg = rgb(style.color, FOREGROUND) if style else FOREGROUND
            bg = rgb(style.bgcolor, None) if style else None
            font = bold if style and style.bold else regular
            for ch in seg.text:
                x = PAD + col * cell_w
                if bg is not None:
                    draw.rectangle([x, y, x + cell_w, y + cell_h], fill=bg)
                if ch != " ":
                    draw.text((x, y), ch, font=font, fill=fg)
                col += 1
    img.save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="the tmux pane: session, session:window or %%pane")
    ap.add_argument("out", help="the PNG to write")
    args = ap.parse_args()
    render(capture(args.target), args.out)


if __name__ == "__main__":
    main()
