"""How large a book figure's text reads on the site's page.

The site shows a PNG at its own size when it fits the text column and scaled down to the column
when it is wider, so a label of ``s`` points in a figure ``w`` inches wide, saved at ``d`` dots per
inch, is drawn on the page at

    px = s / 72 · d · min(1, C / (w · d))

CSS pixels, ``C`` being the column's width: ``s/72 · d`` when the image fits, ``s/72 · C / w`` when
it is scaled (then independent of ``d``). A figure reads when its smallest text reaches
:data:`MIN_TEXT_PX`, the floor the attention views hold their labels to; a figure wider than the
column therefore needs ``s ≥ MIN_TEXT_PX · 72 · w / C`` points (about one point per inch of width).

:func:`~attnbook.plots.base.figure_png` wraps titles at the figure's edge (:func:`wrap_titles`) and
writes into the file the smallest text's size in the PNG's own pixels (:data:`PNG_TEXT_KEY`) and the
texts that still run past the figure's edge (:data:`PNG_CUT_KEY`, :func:`cut_texts`), so a browser
test can check what a page really shows: ``size × displayed width ÷ natural width``, nothing cut.
"""

from __future__ import annotations

import json
import math

from matplotlib.axis import Tick
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from .. import checks
from .base import PNG_DPI

COLUMN_PX = 735  # the site's text column at a 1366 px desktop window (pydata-sphinx-theme), CSS px
MIN_TEXT_PX = 10  # the smallest text a page shows, CSS px: the attention views' floor for their labels
BOOK_WIDTH_IN = COLUMN_PX / PNG_DPI  # 7.35 in: the widest figure the page shows at its own size
MIN_FONT_PT = 8  # the smallest font of a book figure: 11.1 px at PNG_DPI, so >= MIN_TEXT_PX in a figure <= BOOK_WIDTH_IN
PNG_TEXT_KEY = "attnbook:smallest-text-px"  # PNG tEXt key: the smallest text's height in the PNG's pixels
PNG_CUT_KEY = "attnbook:texts-cut"  # PNG tEXt key: a JSON list of the texts that run past the figure's edge


def _drawn_texts(fig: Figure, draw: bool) -> list[tuple[Text, Bbox]]:
    """Every visible, non-empty text of ``fig`` with its box in display pixels (after laying the
    figure out when ``draw``; without, the layout of the last draw, e.g. ``savefig``'s)."""
    if draw:
        fig.draw_without_rendering()
    drawn = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or text.figure is None:
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        box = text.get_window_extent()
        if box.width > 0 and box.height > 0:
            drawn.append((text, box))
    return drawn


def text_sizes(fig: Figure, *, draw: bool = True) -> list[tuple[float, str]]:
    """``(size in points, text)`` of every text the figure draws: visible, not empty, and inside
    the figure once it is laid out (tick labels of ticks outside the view are not drawn). Lays the
    figure out first unless ``draw`` is False (the figure was just drawn)."""
    frame = fig.bbox
    return [(float(t.get_fontsize()), t.get_text()) for t, box in _drawn_texts(fig, draw) if box.overlaps(frame)]


def wrap_titles(fig: Figure) -> None:
    """Let the figure's title and every axes' title wrap at the figure's edge (``Text.set_wrap``),
    so a title longer than a narrow figure breaks into lines instead of being cut."""
    titles = [ax.title for ax in fig.axes] + [t for t in (getattr(fig, "_suptitle", None),) if t is not None]
    for title in titles:
        title.set_wrap(True)


def cut_texts(fig: Figure, tolerance_px: float = 1.0, *, draw: bool = True) -> list[str]:
    """The texts (titles, labels, legends, annotations; tick labels aside, as the axis draws only
    those in view) that the figure draws past its own edge, where the PNG cuts them off."""
    frame = fig.bbox.padded(tolerance_px)
    ticks = {id(t) for tick in fig.findobj(Tick) for t in (tick.label1, tick.label2)}
    return [t.get_text() for t, box in _drawn_texts(fig, draw)
            if id(t) not in ticks and not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1))]


def png_entries(fig: Figure, dpi: float, *, draw: bool = True) -> dict[str, str]:
    """The tEXt entries :func:`~attnbook.plots.base.figure_png` stores: :data:`PNG_TEXT_KEY` (the
    smallest text's height in the PNG's pixels, ``size_pt / 72 · dpi``; absent without text) and
    :data:`PNG_CUT_KEY` (:func:`cut_texts` as JSON, each cut to 60 characters). ``draw=False``
    measures the layout of the last draw (``figure_png`` calls it right after ``savefig``)."""
    if draw:
        fig.draw_without_rendering()
    entries = {PNG_CUT_KEY: json.dumps([t[:60] for t in cut_texts(fig, draw=False)], ensure_ascii=True)}
    smallest = smallest_text_pt(fig, draw=False)
    if math.isfinite(smallest):
        entries[PNG_TEXT_KEY] = f"{smallest / 72 * dpi:.2f}"
    return entries


def smallest_text_pt(fig: Figure, *, draw: bool = True) -> float:
    """The size in points of the smallest text ``fig`` draws (``inf`` when it draws none); ``draw`` as
    in :func:`text_sizes`."""
    return min((size for size, _ in text_sizes(fig, draw=draw)), default=math.inf)


def page_px(size_pt: float, width_in: float, dpi: float, column_px: float = COLUMN_PX) -> float:
    """``size_pt / 72 · dpi · min(1, column_px / (width_in · dpi))``: how many CSS pixels high a text
    of ``size_pt`` points reads on a page whose column is ``column_px`` wide, in a figure
    ``width_in`` inches wide saved at ``dpi``."""
    size_pt = checks.non_negative("size_pt", size_pt)
    width_in, dpi, column_px = (checks.positive(n, v) for n, v in (("width_in", width_in), ("dpi", dpi), ("column_px", column_px)))
    return size_pt / 72 * dpi * min(1.0, column_px / (width_in * dpi))


def readable_pt(width_in: float, dpi: float = PNG_DPI, column_px: float = COLUMN_PX) -> float:
    """The smallest font, in points, that reads at :data:`MIN_TEXT_PX` on the page in a figure
    ``width_in`` inches wide: ``MIN_TEXT_PX · 72 / dpi / min(1, column_px / (width_in · dpi))``
    (the inverse of :func:`page_px`), never below :data:`MIN_FONT_PT`."""
    return max(float(MIN_FONT_PT), MIN_TEXT_PX / page_px(1.0, width_in, dpi, column_px))


def smallest_page_px(fig: Figure, dpi: float, column_px: float = COLUMN_PX) -> float:
    """:func:`page_px` of the figure's smallest text (``inf`` when it draws none)."""
    smallest = smallest_text_pt(fig)
    return math.inf if math.isinf(smallest) else page_px(smallest, fig.get_figwidth(), dpi, column_px)


def too_small(fig: Figure, dpi: float, column_px: float = COLUMN_PX, floor: float = MIN_TEXT_PX) -> list[tuple[str, float]]:
    """The texts of ``fig`` that read below ``floor`` CSS px on the page: ``(text, px)``, smallest first."""
    width = fig.get_figwidth()
    small = [(text, page_px(size, width, dpi, column_px)) for size, text in text_sizes(fig)]
    return sorted(((t, px) for t, px in small if px < floor), key=lambda item: item[1])
