"""The generation table of the compatibility page: ``capture`` around ``model.generate(...)`` for each
family × decoding strategy, judged against an independent reference.

For every case the same prompt is generated twice from the same seed: once plainly and once inside
``capture``. The verdict is one of

* **exact** — for every returned sequence, the captured maps equal the weights of one eager
  ``output_attentions=True`` forward over that sequence's positions (teacher-forced; for an
  encoder–decoder: encoder self-attention, decoder self-attention and cross-attention) within
  :data:`~attnbook.compat.runner.ATOL` wherever the maps' mask is true; ``token_ids`` equal the
  returned sequences; and the sequences equal the plain run's;
* **refused** — ``capture`` raised :class:`~attnbook.errors.UnsupportedGenerationError` before the
  model ran a single forward pass; **refused after checking** — the generation ran, but its passes
  failed capture's checks (rows that are not those of one forward over the sequence), and
  ``generate`` raised the same error instead of returning;
* **outputs changed** — the maps equal the reference, but ``capture`` warned
  (:class:`~attnbook.errors.CaptureChangesOutputsWarning`) that the path it records computes
  something else than the model's usual one (Falcon built with sdpa);
* **library fails** — ``generate`` raises the same error without ``capture`` (an upstream defect:
  Falcon with ALiBi and a static cache);
* **FAILS** — anything else (a wrong map, an unexpected error, sequences that differ without a
  warning). The tests assert that no case fails.

The models are the matrix's own tiny configurations (:mod:`attnbook.compat.hf_cases`), so the
families are built once, offline.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..capture import capture
from ..capture.core import eager_attention
from ..errors import CaptureChangesOutputsWarning, UnsupportedGenerationError
from . import hf_cases
from .runner import ATOL, _quiet, model_state

__all__ = ["Strategy", "GenerationResult", "STRATEGIES", "FAMILIES", "check_generation", "generation_matrix", "generation_table",
           "reference_maps"]

NEW_TOKENS = 6


@dataclass(frozen=True)
class Strategy:
    """A decoding strategy: the keyword arguments of ``generate`` (``assistant`` builds a draft model),
    and whether it runs one prompt only (assisted decoding takes a batch of one)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    single: bool = False
    assistant: bool = False
    early_stop: bool = False  # pick an end-of-sequence token the plain run meets early, so that sequences finish early


STRATEGIES: tuple[Strategy, ...] = (
    Strategy("greedy"),
    Strategy("sampling", {"do_sample": True, "top_k": 0}),
    Strategy("sampling, 2 returned", {"do_sample": True, "top_k": 0, "num_return_sequences": 2}),
    Strategy("beam search (4)", {"num_beams": 4}),
    Strategy("beam search, 3 returned", {"num_beams": 3, "num_return_sequences": 3}),
    Strategy("beam search, finishing early", {"num_beams": 3, "num_return_sequences": 3}, early_stop=True),
    Strategy("beam sampling", {"num_beams": 3, "do_sample": True, "top_k": 0, "num_return_sequences": 2}),
    Strategy("assisted (draft model)", {}, single=True, assistant=True),
    Strategy("prompt lookup", {"prompt_lookup_num_tokens": 3}, single=True),
    Strategy("static cache", {"cache_implementation": "static"}),
    Strategy("static cache, beams", {"cache_implementation": "static", "num_beams": 2}),
    Strategy("no cache", {"use_cache": False, "num_beams": 2}),
    Strategy("contrastive search", {"penalty_alpha": 0.6, "top_k": 4}),
    Strategy("DoLa", {"dola_layers": "high"}),
    Strategy("group beam search", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0}),
    Strategy("constrained beam search", {"num_beams": 3, "force_words_ids": [[5]]}),
    Strategy("quantized cache", {"cache_implementation": "quantized"}),
    Strategy("continuous batching", {"cache_implementation": "paged"}),
)

#: the families of the generation table: decoder-only (plain, left-padded, grouped-query, sliding
#: window, sliding + soft-capping, ALiBi, Falcon) and encoder–decoders
FAMILIES: tuple[str, ...] = ("gpt2", "llama", "qwen2", "mistral", "gemma2", "bloom", "falcon", "falcon (alibi)", "bart", "t5",
                             "marian", "whisper")


@dataclass
class GenerationResult:
    """One family × strategy: ``status`` is 'exact', 'refused', 'refused after checking', 'outputs changed',
    'library fails' or 'FAILS'."""

    family: str
    strategy: str
    status: str
    max_diff: float = math.nan       # largest |captured − reference| where the mask is true
    sequences: int = 0               # returned sequences
    finished_early: int = 0          # of them, how many ended before the longest
    layers: int = 0
    message: str = ""                # the refusal or the warning, or the problem
    seconds: float = 0.0


def _case(family: str) -> Any:
    return next(c for c in hf_cases.CASES if c.name == family)


def _falcon_alibi() -> tuple[nn.Module, dict[str, Any]]:
    """Falcon built with sdpa and ALiBi: its recorded path adds the bias twice (outputs change) but stays causal."""
    from .falcon import build, inputs

    ids, mask = inputs()
    return build({"alibi": True}), {"input_ids": ids, "attention_mask": torch.ones_like(ids) if mask is None else mask}


#: families built here rather than taken from the matrix's cases
_BUILDERS: dict[str, Callable[[], tuple[nn.Module, dict[str, Any]]]] = {"falcon (alibi)": _falcon_alibi}


def _build(family: str) -> tuple[nn.Module, dict[str, Any]]:
    return _BUILDERS[family]() if family in _BUILDERS else _case(family).build()


def _prompt(family: str, single: bool) -> tuple[nn.Module, dict[str, Any]]:
    """The family's matrix model (after one eager forward with ``output_attentions=True``, so that any
    recorders transformers installs on first use are in place before the state is compared) and its
    prompt (the forward inputs less the decoder's)."""
    model, inputs = _build(family)
    with torch.no_grad(), eager_attention(model):
        model(**inputs, output_attentions=True)
    prompt = {k: v for k, v in inputs.items() if k not in ("decoder_input_ids",)}
    if single:
        prompt = {k: v[-1:] if isinstance(v, torch.Tensor) else v for k, v in prompt.items()}
    return model, prompt


def _generate_kwargs(model: nn.Module, strategy: Strategy) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": NEW_TOKENS, **strategy.kwargs}
    config = model.config
    if not config.is_encoder_decoder and model.generation_config.pad_token_id is None:
        kwargs["pad_token_id"] = getattr(config, "pad_token_id", None) if getattr(config, "pad_token_id", None) is not None else 0
    return kwargs


def _assistant(family: str) -> nn.Module:
    """A draft model of the same family and vocabulary, other weights (seed 1)."""
    draft, _ = _build(family)
    torch.manual_seed(1)
    for p in draft.parameters():  # other weights than the target's, the same architecture
        torch.nn.init.normal_(p, std=0.05)
    return draft


def _sequences(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.sequences


def reference_maps(model: nn.Module, prompt: dict[str, Any], sequences: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Per role ('encoder', 'self', 'cross'), the weights of one eager ``output_attentions=True``
    forward over every returned sequence's positions ``sequences[:, :-1]`` (teacher-forced), each
    (returned sequences, heads, queries, keys) — the reference the generation table compares with. A
    left-padded prompt gets the attention mask and the position ids ``generate`` gives it (the mask's
    running count, as ``_prepare_position_ids_for_generation`` computes them)."""
    R, L = sequences.shape
    batch = next(v for v in prompt.values() if isinstance(v, torch.Tensor)).shape[0]
    per = R // batch
    fed = sequences[:, : L - 1]
    expanded = {k: v.repeat_interleave(per, 0) if isinstance(v, torch.Tensor) else v for k, v in prompt.items()}
    with torch.no_grad(), eager_attention(model):
        if model.config.is_encoder_decoder:
            out = model(**expanded, decoder_input_ids=fed, output_attentions=True)
            return {"encoder": [a.float() for a in out.encoder_attentions], "self": [a.float() for a in out.decoder_attentions],
                    "cross": [a.float() for a in out.cross_attentions]}
        mask = expanded.get("attention_mask")
        extra: dict[str, Any] = {}
        if mask is not None:
            mask = torch.cat([mask, torch.ones(R, fed.shape[1] - mask.shape[1], dtype=mask.dtype)], dim=1)
            if "position_ids" in inspect.signature(model.forward).parameters:  # the positions generate gives a padded prompt
                extra["position_ids"] = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        out = model(fed, attention_mask=mask, output_attentions=True, **extra)
        return {"self": [a.float() for a in out.attentions]}


def check_generation(family: str, strategy: Strategy) -> GenerationResult:
    """Run ``strategy`` on ``family`` plainly and under ``capture`` and judge it (see the module docstring)."""
    with _quiet():
        return _check(family, strategy)


def _check(family: str, strategy: Strategy) -> GenerationResult:
    start = time.perf_counter()
    result = GenerationResult(family, strategy.name, "FAILS")
    model, prompt = _prompt(family, strategy.single)
    kwargs = _generate_kwargs(model, strategy)
    if strategy.assistant:
        kwargs["assistant_model"] = _assistant(family)
    if strategy.early_stop:  # the token the second returned beam of a plain run emits second becomes the end of sequence
        with torch.no_grad():
            beams = _sequences(model.generate(**prompt, **kwargs))
        prompt_len = 1 if model.config.is_encoder_decoder else prompt["input_ids"].shape[1]
        kwargs["eos_token_id"] = int(beams[min(1, beams.shape[0] - 1), min(prompt_len + 1, beams.shape[1] - 1)])
    before = model_state(model)
    forwards = [0]
    counter = model.register_forward_pre_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CaptureChangesOutputsWarning)
            torch.manual_seed(0)
            try:
                with torch.no_grad(), capture(model) as cap:
                    recorded = _sequences(model.generate(**prompt, **kwargs))
            finally:
                counter.remove()
    except UnsupportedGenerationError as exc:  # before the first pass, or when the passes fail capture's checks
        result.status = "refused" if forwards[0] == 0 else "refused after checking"
        result.message = f"{type(exc).__name__}: {exc}"
        return _done(result, model, before, start)
    except Exception as exc:  # noqa: BLE001 - an unexpected error is a failed case, unless the library fails without capture too
        result.message = f"{type(exc).__name__}: {exc}"
        try:
            torch.manual_seed(0)
            with torch.no_grad():
                model.generate(**prompt, **kwargs)
        except type(exc) as plain_exc:
            result.status, result.message = "library fails", f"without capture too: {type(plain_exc).__name__}: {plain_exc}"
        return _done(result, model, before, start)
    try:  # the same call without capture, from the same seed
        torch.manual_seed(0)
        with torch.no_grad():
            plain = _sequences(model.generate(**prompt, **kwargs))
    except Exception as exc:  # noqa: BLE001 - reported
        result.message = f"the plain run raised {type(exc).__name__}: {exc}, capture did not"
        return _done(result, model, before, start)
    warned = [str(w.message) for w in caught if issubclass(w.category, CaptureChangesOutputsWarning)]
    generation = cap.generations[0]
    reference = reference_maps(model, prompt, generation.sequences)
    worst = 0.0
    by_role = {role: iter(layers) for role, layers in reference.items()}
    for weights, role in zip(cap.per_layer(), generation.roles):
        ref = next(by_role[role])
        mask = generation.masks[role][:, None]
        if ref.shape != weights.shape:
            result.message = f"{role} layer: shape {tuple(weights.shape)}, reference {tuple(ref.shape)}"
            return _done(result, model, before, start)
        worst = max(worst, float(((weights - ref).abs() * mask).max()))
    result.max_diff, result.layers, result.sequences = worst, len(generation.roles), recorded.shape[0]
    rows = generation.masks["self"].any(-1)  # (R, T): the positions each sequence read
    last = (rows * torch.arange(1, rows.shape[1] + 1)).amax(-1)  # 1 + the last of them
    result.finished_early = int((last < rows.shape[1]).sum())
    ids_key = "decoder_input_ids" if model.config.is_encoder_decoder else "input_ids"
    problems = []
    if not worst <= ATOL:
        problems.append(f"maps differ from the reference by {worst:.2e} (> {ATOL})")
    if not torch.equal(cap.token_ids(ids_key), generation.sequences[:, :-1]):
        problems.append("token_ids are not the returned sequences")
    same = plain.shape == recorded.shape and torch.equal(plain, recorded)
    if warned:
        result.status, result.message = "outputs changed", warned[0]
    elif not same:
        problems.append("the sequences differ from the plain run's, without a warning")
    if problems:
        result.status, result.message = "FAILS", "; ".join(problems)
    elif not warned:
        result.status = "exact"
    return _done(result, model, before, start)


def _done(result: GenerationResult, model: nn.Module, before: dict, start: float) -> GenerationResult:
    if model_state(model) != before or "generate" in vars(model):
        result.status, result.message = "FAILS", (result.message + "; " if result.message else "") + "a hook or flag was left behind"
    result.seconds = time.perf_counter() - start
    return result


def generation_matrix(families: tuple[str, ...] = FAMILIES, strategies: tuple[Strategy, ...] = STRATEGIES,
                      progress: Callable[[Any], Any] | None = None) -> pd.DataFrame:
    """Every family × strategy checked: one row each (family, strategy, status, max_diff, sequences,
    finished_early, layers, message, seconds)."""
    pairs = [(f, s) for f in families for s in strategies]
    rows = [asdict(check_generation(f, s)) for f, s in (progress(pairs) if progress else pairs)]
    return pd.DataFrame(rows)


def generation_table(results: pd.DataFrame) -> pd.DataFrame:
    """Families as rows, strategies as columns: 'exact (2e-08)', 'refused', 'outputs changed (exact to
    the eager path: 3e-08)' or 'FAILS: …'."""
    def cell(row: pd.Series) -> str:
        if row.status == "exact":
            return f"exact ({row.max_diff:.0e})"
        if row.status == "outputs changed":
            return f"outputs changed ⚠ ({row.max_diff:.0e})"
        if row.status == "refused":
            return "refused"
        if row.status == "library fails":
            return "library fails"
        if row.status == "refused after checking":
            return "refused (checked)"
        return "FAILS: " + row.message
    table = results.assign(cell=results.apply(cell, axis=1)).pivot(index="family", columns="strategy", values="cell")
    return table.loc[list(dict.fromkeys(results.family)), list(dict.fromkeys(results.strategy))]
