"""The text explorer of chapter 1: a reader types or uploads text, the model's maps are explored."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from .. import checks, metrics, plots
from ..errors import AttnbookError, InvalidInputError, bad_argument
from ..explore import ERROR_COLOUR, MapsExplorer, Stats, show_figure
from ..maps import AttentionMaps
from ..views import AttentionView, LiveControl

__all__ = ["TextExplorer", "text", "sentences_view", "TEXT_LIVE"]


def _uploaded_file(value: Any) -> tuple[str, bytes] | None:
    """(name, content) of the first file in a FileUpload value (ipywidgets 8 tuple, or 7 dict)."""
    items = list(value.values()) if isinstance(value, Mapping) else list(value or ())
    if not items:
        return None
    item = items[0]
    return str(item.get("name", "file")), bytes(item["content"])


class TextExplorer:
    """Text area + .txt upload + *Analyse* button; shows a :class:`MapsExplorer` of the result.

    Child widgets: ``textarea``, ``upload``, ``button``, ``message`` (HTML: notes and red errors),
    ``result`` (VBox holding the explorer and the token highlight); ``explorer`` is the current
    :class:`MapsExplorer` (None before the first successful analysis).
    """

    def __init__(
        self,
        analyse: Callable[[str], AttentionMaps],
        *,
        initial_text: str = "",
        importance: Callable[[AttentionMaps], Sequence[float]] | None = None,
        stats: Stats | None = None,
        max_chars: int = 2000,
        title: str | None = None,
        heatmap_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        for name, function in (("analyse", analyse), ("importance", importance), ("stats", stats)):
            if function is not None and not callable(function):
                raise bad_argument(InvalidInputError, name, "a callable", function)
        if analyse is None:
            raise bad_argument(InvalidInputError, "analyse", "a callable str -> AttentionMaps", analyse)
        max_chars = checks.positive_int("max_chars", max_chars)
        self._analyse, self.importance, self.stats = analyse, importance, stats
        self.max_chars, self.title, self.heatmap_kwargs = max_chars, title, heatmap_kwargs
        self.explorer: MapsExplorer | None = None
        self.highlight: widgets.Output | None = None
        self._build(str(initial_text))
        if str(initial_text).strip():
            self.analyse()

    def _build(self, initial_text: str) -> None:
        self.textarea = widgets.Textarea(
            value=initial_text, placeholder="Type or paste text here, or upload a .txt file",
            rows=5, layout=widgets.Layout(width="100%"),
        )
        self.upload = widgets.FileUpload(accept=".txt", multiple=False, description="Upload .txt")
        self.button = widgets.Button(description="Analyse", button_style="primary", icon="play")
        self.message = widgets.HTML()
        self.result = widgets.VBox()
        self.upload.observe(self._on_upload, names="value")
        self.button.on_click(lambda _button: self.analyse())
        self.widget = widgets.VBox([self.textarea, widgets.HBox([self.upload, self.button]), self.message, self.result])

    def say(self, message: str, error: bool = False) -> None:
        """Show ``message`` under the buttons (red when ``error``; '' clears it)."""
        colour = ERROR_COLOUR if error else "#444"
        self.message.value = f'<div style="color:{colour}">{html.escape(message)}</div>' if message else ""

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        upload = _uploaded_file(change["new"])
        if upload is None:
            return
        name, content = upload
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.say(f"{name}: expected UTF-8 text, but the file could not be decoded as UTF-8.", error=True)
        else:
            self.textarea.value = text
            self.say(f"Loaded {name} ({len(text)} characters). Press Analyse.")
        self.upload.value = ()  # so that the same file can be uploaded again

    def _token_scores(self, result: AttentionMaps) -> widgets.Output:
        scores = [float(s) for s in self.importance(result)]
        tokens = result.tokens(0) or [f"#{j}" for j in range(result.n_keys)]
        if len(scores) != len(tokens):  # scores may cover only the unpadded keys
            valid = result.key_mask()[0].any(0).tolist()
            tokens = [t for t, keep in zip(tokens, valid) if keep] if len(scores) == sum(valid) else tokens
        out = widgets.Output()
        show_figure(out, plots.token_highlight(tokens, scores, title="token importance · sample 0"))
        return out

    def analyse(self, text: str | None = None) -> MapsExplorer | None:
        """Analyse ``text`` (default: the text area) and show the result; None after an error."""
        text = self.textarea.value if text is None else text
        if not text.strip():
            self.say("Type or upload some text first.", error=True)
            return None
        note = f"Only the first {self.max_chars} characters were analysed." if len(text) > self.max_chars else ""
        explorer = highlight = None
        try:
            result = self._analyse(text[: self.max_chars])
            if not isinstance(result, AttentionMaps):
                raise bad_argument(InvalidInputError, "analyse", "a function returning AttentionMaps", type(result).__name__, raw=True)
            explorer = MapsExplorer(result, stats=self.stats, title=self.title, heatmap_kwargs=self.heatmap_kwargs)
            highlight = self._token_scores(result) if self.importance is not None else None
        except AttnbookError as exc:
            if explorer is not None:
                explorer.close()
            self._replace(None, None)
            self.say(str(exc), error=True)
            return None
        self._replace(explorer, highlight)
        self.say(note)
        return explorer

    def _replace(self, explorer: MapsExplorer | None, highlight: widgets.Output | None) -> None:
        if self.explorer is not None:
            self.explorer.close()
        if self.highlight is not None:
            self.highlight.close()
        self.explorer, self.highlight = explorer, highlight
        self.result.children = tuple(w for w in (highlight, None if explorer is None else explorer.widget) if w is not None)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def text(
    analyse: Callable[[str], AttentionMaps],
    *,
    initial_text: str = "",
    importance: Callable[[AttentionMaps], Sequence[float]] | None = None,
    stats: Stats | None = None,
    max_chars: int = 2000,
    title: str | None = None,
    heatmap_kwargs: Mapping[str, Any] | None = None,
) -> TextExplorer:
    """Explorer for text a reader types or uploads: ``analyse(text)`` -> maps explorer (+ token scores).

    Errors (:class:`~attnbook.errors.AttnbookError`) raised by ``analyse`` or ``importance`` are
    shown as a red message. Runs once at construction when ``initial_text`` is not blank.
    """
    return TextExplorer(
        analyse, initial_text=initial_text, importance=importance, stats=stats,
        max_chars=max_chars, title=title, heatmap_kwargs=heatmap_kwargs,
    )




#: what chapter 1's explorer does that the page cannot: it needs the model
TEXT_LIVE = (LiveControl("Your own text", "text"), LiveControl("Upload .txt", "file"), LiveControl("Analyse", "button"))


def sentences_view(analyse: Callable[[Sequence[str]], AttentionMaps], sentences: Sequence[str], *, title: str = "",
                   caption: str = "") -> AttentionView:
    """The static view of ``analyse(sentences)`` (every layer and head; one sample a sentence),
    with the text box, the upload and *Analyse* shown as live-only controls. Each head's line under
    the drawing gives its statistics on the selected sentence (:func:`attnbook.metrics.head_summary`:
    normalised entropy, previous/self/next-token mass, [CLS] and [SEP] mass, 90 % span)."""
    if isinstance(sentences, str) or not sentences or not all(isinstance(s, str) and s.strip() for s in sentences):
        raise bad_argument(InvalidInputError, "sentences", "a non-empty list of non-blank strings", sentences)
    maps = analyse(list(sentences))
    labels = [s if len(s) <= 48 else s[:47] + "…" for s in sentences]
    L, B, H = maps.n_layers, maps.batch_size, maps.n_heads
    rows = [metrics.head_summary(maps.select(samples=b), special=STATS_LABELS) for b in range(B)]  # one row per (layer, head)
    notes = [[[_head_line(rows[b][l * H + h]) for b in range(B)] for h in range(H)] for l in range(L)]
    view = AttentionView(title, caption=caption, live=TEXT_LIVE, live_hint="type your own text in the explorer below, in JupyterLab")
    return view.add(maps, sample_labels=labels, head_notes=notes)


#: the special tokens whose received mass each head's line reports
STATS_LABELS = ("[CLS]", "[SEP]")


def _head_line(row: Mapping[str, float]) -> str:
    parts = [("entropy (normalised)", "norm_entropy"), ("previous token", "previous"), ("self", "self"), ("next token", "next"),
             *((f"{t} mass", t) for t in STATS_LABELS), ("90 % span", "span90")]
    return "on this sentence: " + ", ".join(f"{name} {row[key]:.2f}" for name, key in parts if key in row)
