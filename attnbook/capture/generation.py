"""Capture over Hugging Face ``generate``: exact maps per returned sequence, or a typed refusal first.

Inside a ``capture`` block, ``model.generate(...)`` is followed pass by pass. Each forward pass of the
model records, besides its weights, where its queries sit in the sequence (the cache's length before
the pass, ``cache.get_seq_length()``), the token ids it was fed, and the attention mask; every
reordering of the cache between passes (beam search keeps the surviving beams:
``cache.reorder_cache(beam_idx)``) is recorded too. When ``generate`` returns, every returned sequence
is traced back through the passes: the slot whose tokens equal that sequence's prefix at each pass,
following the reorders, gives the rows of the positions that pass fed. The result is, for every
returned sequence ``r``, the map that one eager forward over ``sequences[r, :T]`` gives (rows of a
causal model depend only on their prefix), assembled from the generation's own passes — nothing is
recomputed.

Conventions (the same as a greedy generation always had):

* ``T = sequences.shape[1] - 1``: the positions the model *read*. The last token of a sequence was
  produced, never fed, so it has no row; :meth:`Capture.token_ids` is ``sequences[:, :T]`` and
  ``cap.sequences`` what ``generate`` returned (an encoder–decoder whose ``generate`` returns only the
  new tokens, as Whisper's does, gets its decoder prompt put back in front).
* A sequence that finished early (its first end-of-sequence token after the prompt at position
  ``e``) has real rows ``0 … e-1``; rows and columns from ``e`` on carry weight 0 and are ``False`` in
  the maps' mask. Left-padding of the prompt is ``False`` in the mask too (its rows are kept as the
  model computed them).
* Decoder self-attention: ``(R, heads, T, T)``; cross-attention: ``(R, heads, T, source)``; the
  encoder's self-attention (run once, before the decoder) repeated for the returned sequences of
  each input: ``(R, heads, source, source)``. ``R`` is the number of returned sequences.
* Keys follow the cache: a full cache holds positions ``0 … s+q-1``; a sliding-window cache the last
  ``k`` of them; a static cache ``k ≥ s+q`` slots whose unused tail must carry weight 0 (checked).

Every row is checked while it is placed: a row is taken only from a pass whose fed prefix equals the
returned sequence up to that row (so the rows of rejected draft tokens in assisted decoding, cropped
from the cache, are never used), every real row must be found, and every real row must keep its
whole weight on the keys it was placed on. A generation that fails a check raises
:class:`~attnbook.errors.UnsupportedGenerationError` naming its options (GPT-Neo's local layers on a
static cache attend to later positions) — never a map that matches no reference.

What is refused before generation starts (:class:`~attnbook.errors.UnsupportedGenerationError`,
naming the option and what to use instead): strategies the library loads from the hub
(``custom_generate``, DoLa, contrastive search, group and constrained beam search), continuous
batching (``cache_implementation="paged"``), a quantized cache (its keys are not the model's keys),
a cache that already holds tokens, the captured model as its own assistant (``assistant_model`` set to
it, ``assistant_early_exit``, ``use_mtp``), prompts given only as ``inputs_embeds``, and a model whose
recorded path is known not to be causal (:mod:`attnbook.capture.divergence`: Falcon built with sdpa
and rotary positions), since then no row of a generation depends on its prefix alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import NothingCapturedError, UnsupportedGenerationError

__all__ = ["Generation", "GenerationPass", "AssembledGeneration", "refuse_unsupported", "STRATEGIES", "REFUSED_OPTIONS"]

#: the decoding strategies of transformers' ``generate`` that capture assembles exactly
STRATEGIES = ("greedy_search", "sample", "beam_search", "beam_sample", "assisted_generation")

#: generate options refused before generation starts: option -> what to use instead
REFUSED_OPTIONS = {
    "custom_generate": "a built-in strategy (greedy, sampling, beam search, beam sampling, assisted or prompt-lookup decoding)",
    "dola_layers": "greedy or sampled decoding (DoLa runs hub code that contrasts layers)",
    "penalty_alpha": "greedy, sampled or beam decoding (contrastive search runs hub code)",
    "num_beam_groups": "num_beams without groups (group beam search runs hub code)",
    "constraints": "beam search without constraints (constrained beam search runs hub code)",
    "force_words_ids": "beam search without forced words (constrained beam search runs hub code)",
    "cache_implementation='paged'": "cache_implementation='dynamic' or 'static' (continuous batching schedules requests itself)",
    "cache_implementation='quantized'": "cache_implementation='dynamic' or 'static' (a quantized cache attends to approximate keys)",
    "assistant_model": "another model as assistant, or prompt_lookup_num_tokens= (the captured model cannot draft for itself)",
    "assistant_early_exit": "prompt_lookup_num_tokens= or a separate assistant_model (early exit drafts with the captured model's own layers)",
    "use_mtp": "prompt_lookup_num_tokens= or a separate assistant_model (multi-token prediction drafts with the captured model's own heads)",
    "cache": "generate(...) from an empty cache (positions already cached were not recorded)",
    "inputs_embeds": "input_ids (capture follows the returned sequences by their token ids)",
    "a weights path that is not causal": "the model loaded with attn_implementation='eager', whose one path is causal, or plain "
                                         "forward passes under capture(verify=True)",
}


def _refuse(option: str, got: Any) -> UnsupportedGenerationError:
    return UnsupportedGenerationError(f"generate under capture: {option} is not supported (got {got!r}); use "
                                      f"{REFUSED_OPTIONS[option]}")


def _cache_in(kwargs: dict) -> Any:
    """The cache object among a forward's or generate's keyword arguments, or None."""
    from transformers.cache_utils import Cache

    for key in ("cache", "past_key_values"):
        value = kwargs.get(key)
        if isinstance(value, Cache):
            return value
    return None


def refuse_unsupported(model: nn.Module, args: tuple, kwargs: dict) -> tuple[str, Any]:
    """Raise :class:`UnsupportedGenerationError` for a ``generate`` call capture cannot assemble exactly;
    else return (the strategy's name, the resolved generation config)."""
    from .divergence import divergences

    if kwargs.get("custom_generate") is not None:
        raise _refuse("custom_generate", kwargs["custom_generate"])
    for name, found in divergences(model):
        if not found.causal:  # its recorded rows see later tokens: no generation's rows depend on their prefix alone
            raise _refuse("a weights path that is not causal", f"{name or type(model).__name__}: {found.message()}")
    assistant = kwargs.get("assistant_model")
    if assistant is not None and (assistant is model or any(m is model for m in assistant.modules())
                                  or any(m is assistant for m in model.modules())):
        raise _refuse("assistant_model", type(assistant).__name__)
    cache = _cache_in(kwargs)
    if cache is not None and cache.get_seq_length() > 0:
        raise _refuse("cache", f"a {type(cache).__name__} holding {cache.get_seq_length()} tokens")
    if kwargs.get("inputs_embeds") is not None and kwargs.get("input_ids") is None and not args:
        raise _refuse("inputs_embeds", "inputs_embeds without input_ids")
    generation_kwargs = {k: v for k, v in kwargs.items() if k not in ("assistant_model", "streamer", "synced_gpus", "logits_processor",
                                                                     "stopping_criteria", "prefix_allowed_tokens_fn",
                                                                     "negative_prompt_ids", "negative_prompt_attention_mask",
                                                                     "custom_generate", "trust_remote_code")}
    config, _ = model._prepare_generation_config(kwargs.get("generation_config"), **{k: v for k, v in generation_kwargs.items()
                                                                                       if k != "generation_config"})
    for option, value in (("dola_layers", config.dola_layers), ("constraints", config.constraints),
                          ("force_words_ids", config.force_words_ids), ("assistant_early_exit", config.assistant_early_exit),
                          ("use_mtp", getattr(config, "use_mtp", None) or None)):
        if value is not None:
            raise _refuse(option, value)
    if (config.num_beam_groups or 1) > 1:
        raise _refuse("num_beam_groups", config.num_beam_groups)
    if config.penalty_alpha is not None and config.penalty_alpha > 0 and (config.top_k or 0) > 1 and (config.num_beams or 1) == 1:
        raise _refuse("penalty_alpha", config.penalty_alpha)
    if config.cache_implementation in ("paged", "quantized"):
        raise _refuse(f"cache_implementation={config.cache_implementation!r}", config.cache_implementation)
    mode = str(config.get_generation_mode(assistant).value)
    if mode not in STRATEGIES:  # a strategy added upstream after this list was written
        raise UnsupportedGenerationError(f"generate under capture: expected one of the strategies {list(STRATEGIES)}, got {mode!r}")
    return mode, config


@dataclass
class GenerationPass:
    """One forward pass of the generating model: where its queries start, what it was fed, which
    reorder of the slots came before it, and its recorded weights (site, weights) in call order."""

    start: int
    fed: torch.Tensor                       # (slots, queries) token ids
    reorder: torch.Tensor | None            # (slots,) slot b now holds what slot reorder[b] held, or None
    key_mask: torch.Tensor | None           # decoder-only: (slots, keys) attention mask; None: all keys real
    records: list = field(default_factory=list)


@dataclass
class AssembledGeneration:
    """One ``generate`` call as maps per returned sequence (see the module docstring)."""

    layers: list[tuple[Any, int, str]]      # (site, call index, layer name), in call order
    roles: list[str]                        # per layer: 'encoder', 'self' (decoder) or 'cross'
    weights: list[torch.Tensor]             # per layer (R, heads, queries, keys)
    masks: dict[str, torch.Tensor]          # per role: (R, queries, keys) bool
    sequences: torch.Tensor                 # what generate returned (R, L), with a decoder prompt it left out put back
    token_ids: dict[str, torch.Tensor]      # 'input_ids' / 'decoder_input_ids' of the positions read
    strategy: str


class Generation:
    """What one ``generate`` call under ``capture`` recorded, until it is assembled."""

    def __init__(self, model: nn.Module, strategy: str, config: Any, encoder_decoder: bool, prompt: dict) -> None:
        self.model = model
        self.strategy = strategy
        self.config = config
        self.encoder_decoder = encoder_decoder
        self.prompt = prompt                      # encoder input_ids / attention_mask as generate got them
        self.passes: list[GenerationPass] = []
        self.encoder: list = []                   # (site, weights) of the encoder, run once before the decoder
        self._pending: torch.Tensor | None = None  # reorders since the last pass, composed
        self._wrapped: list[tuple[Any, str, Any]] = []

    # -- while generating ------------------------------------------------------------------------
    def note_reorder(self, beam_idx: torch.Tensor) -> None:
        idx = beam_idx.detach().to("cpu", torch.long)
        self._pending = idx if self._pending is None else self._pending[idx]

    def follow(self, cache: Any) -> None:
        """Record every ``reorder_cache`` call on ``cache`` (an instance attribute, removed by :meth:`close`)."""
        if any(obj is cache for obj, _, _ in self._wrapped):
            return
        original = cache.reorder_cache

        def reorder_cache(beam_idx: torch.Tensor, *a: Any, **k: Any) -> Any:
            self.note_reorder(beam_idx)
            return original(beam_idx, *a, **k)

        had = "reorder_cache" in vars(cache)
        cache.reorder_cache = reorder_cache
        self._wrapped.append((cache, "reorder_cache", original if had else None))

    def close(self) -> None:
        for obj, name, old in reversed(self._wrapped):
            if old is None:
                vars(obj).pop(name, None)
            else:
                setattr(obj, name, old)
        self._wrapped.clear()

    def start_pass(self, kwargs: dict) -> GenerationPass:
        cache = _cache_in(kwargs)
        if cache is not None:
            self.follow(cache)
        start = int(cache.get_seq_length()) if cache is not None else 0
        fed = kwargs.get("decoder_input_ids" if self.encoder_decoder else "input_ids")
        if not isinstance(fed, torch.Tensor):
            raise UnsupportedGenerationError("generate under capture: expected the token ids of every pass "
                                             f"({'decoder_input_ids' if self.encoder_decoder else 'input_ids'}), got none; "
                                             f"use {REFUSED_OPTIONS['inputs_embeds']}")
        mask = kwargs.get("decoder_attention_mask" if self.encoder_decoder else "attention_mask")
        step = GenerationPass(start, fed.detach().cpu(), self._pending,
                              mask.detach().cpu().bool() if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None)
        self._pending = None
        self.passes.append(step)
        return step

    def unassembled(self, detail: str) -> UnsupportedGenerationError:
        """The refusal when the passes do not assemble into maps of one forward over the returned
        sequences: what was found, the options of this generation, what to use instead."""
        c = self.config
        options = (f"{self.strategy}, num_beams={c.num_beams}, cache_implementation={c.cache_implementation!r}, "
                   f"use_cache={c.use_cache}")
        return UnsupportedGenerationError(
            f"generate under capture: {detail}; this generation ({options}) does not assemble into the maps of one forward over "
            f"its returned sequences, so nothing is returned rather than a wrong map; use the dynamic cache "
            f"(cache_implementation=None) with greedy, sampled or beam decoding, or capture plain forward passes over the "
            f"returned sequences")

    # -- when generate has returned --------------------------------------------------------------
    def assemble(self, sequences: torch.Tensor, layout: list[tuple[Any, int, str]], dtype: torch.dtype,
                 budget: Callable[[int], None]) -> AssembledGeneration:
        """Every returned sequence's maps from the passes (see the module docstring)."""
        self.close()
        if not self.passes:
            raise NothingCapturedError("generate under capture: expected forward passes of the model, got none")
        seq = sequences.detach().cpu()
        R, L = seq.shape
        T = L - 1
        slots = self.passes[0].fed.shape[0]
        batch = self.prompt["batch"]
        if slots % batch or R % batch:
            raise self.unassembled(f"expected slots ({slots}) and returned sequences ({R}) to be multiples of the batch ({batch})")
        per_item, returned_per_item = slots // batch, R // batch
        prompt_len = self._prompt_length()
        if self.encoder_decoder:  # a generate that returns only the new tokens (Whisper): the decoder prompt put back
            start = self.passes[0].fed[torch.arange(R) // returned_per_item * per_item, :prompt_len]
            if L < prompt_len or not torch.equal(seq[:, :prompt_len], start):
                seq = torch.cat([start, seq], dim=1)
                R, L = seq.shape
                T = L - 1
        fed_len = self._fed_lengths(seq, prompt_len)
        hyps = self._hypotheses()
        lineages = [self._lineage(hyps, seq[r], int(fed_len[r]), range((r // returned_per_item) * per_item,
                                                                 (r // returned_per_item + 1) * per_item)) for r in range(R)]
        enc_sites = {id(s) for s, _ in self.encoder}
        roles = ["encoder" if id(site) in enc_sites else site.kind for site, _, _ in layout]
        sizes = []
        for (site, k, _), role in zip(layout, roles):
            w = self._records(site, k, role)[0]
            source = w.shape[-1]
            sizes.append(R * w.shape[1] * (source * source if role == "encoder" else T * (source if role == "cross" else T)))
        budget(sum(sizes) * torch.empty((), dtype=dtype).element_size())
        weights = []
        for (site, k, name), role in zip(layout, roles):
            recs = self._records(site, k, role)
            if role == "encoder":
                weights.append(recs[0][self._encoder_rows(recs[0].shape[0], lineages, returned_per_item)].to(dtype))
                continue
            out = torch.zeros(R, recs[0].shape[1], T, recs[0].shape[-1] if role == "cross" else T, dtype=dtype)
            for r, lineage in enumerate(lineages):
                for j, slot, upto in lineage:
                    p, w = self.passes[j], recs[j][slot]
                    q = w.shape[-2]
                    lo, hi = p.start, min(p.start + q, upto)
                    if hi <= lo:
                        continue
                    rows = w[:, : hi - lo]
                    if role == "cross":
                        out[r, :, lo:hi] = rows.to(dtype)
                        continue
                    out[r, :, lo:hi] = self._place_keys(rows, p.start, q, T, name).to(dtype)
            weights.append(out)
        masks = self._masks(seq, fed_len, lineages, weights, roles, returned_per_item, T)
        weights = [w * masks[role][:, None].to(w.dtype) for w, role in zip(weights, roles)]  # nothing outside the mask
        tolerance = 1e-4 if dtype == torch.float32 else 2e-2
        for w, role, (_, _, name) in zip(weights, roles, layout):  # every real row keeps its whole weight
            real = masks[role].any(-1)[:, None].expand(-1, w.shape[1], -1)
            lost = (w.float().sum(-1) - 1).abs()[real]
            if lost.numel() and float(lost.max()) > tolerance:
                raise self.unassembled(f"layer {name!r}: expected every real row to sum to 1 over the keys it was placed on, "
                                       f"got a row off by {float(lost.max()):.3g} (the cache's keys are not those of a forward "
                                       f"over the sequence)")
        ids = {("decoder_input_ids" if self.encoder_decoder else "input_ids"): seq[:, :T]}
        if self.encoder_decoder and self.prompt.get("input_ids") is not None:
            ids["input_ids"] = self.prompt["input_ids"][torch.arange(R) // returned_per_item]
        return AssembledGeneration(layout, roles, weights, masks, seq, ids, self.strategy)

    def _encoder_rows(self, rows: int, lineages: list, returned_per_item: int) -> torch.Tensor:
        """Which row of the encoder's batch each returned sequence read: the encoder runs on the inputs
        (one row per input), or on them already expanded (one per slot, or per returned sequence)."""
        R = len(lineages)
        if rows == R:
            return torch.arange(R)
        if rows == self.passes[0].fed.shape[0]:
            return torch.tensor([lineage[0][1] for lineage in lineages])
        if rows == self.prompt["batch"]:
            return torch.arange(R) // returned_per_item
        raise NothingCapturedError(f"generate under capture: expected the encoder to run on the {self.prompt['batch']} inputs, the "
                                   f"slots or the returned sequences, got a batch of {rows}")

    def _prompt_length(self) -> int:
        """Tokens of the (decoder) prompt: the ``input_ids`` (decoder-only) or ``decoder_input_ids``
        (encoder–decoder) generate was given, else the decoder's start token. Not the first pass's
        length: an assisted first pass also reads the draft's tokens."""
        given = self.prompt.get("decoder_input_ids" if self.encoder_decoder else "input_ids")
        if isinstance(given, torch.Tensor):
            return int(given.shape[-1])
        return 1 if self.encoder_decoder else int(self.passes[0].fed.shape[1])

    def _records(self, site: Any, k: int, role: str) -> list[torch.Tensor]:
        if role == "encoder":
            mine = [w for s, w in self.encoder if s is site]
            if len(mine) <= k:
                raise NothingCapturedError(f"layer {site.name!r}: expected call {k} in the encoder pass, got {len(mine)}")
            return [mine[k]]
        out = []
        for p in self.passes:
            mine = [w for s, w in p.records if s is site]
            if len(mine) <= k:
                raise NothingCapturedError(f"layer {site.name!r}: expected call {k} in every generation pass, got {len(mine)}")
            out.append(mine[k].detach().to("cpu", torch.float32))
        return out

    def _fed_lengths(self, seq: torch.Tensor, prompt_len: int) -> torch.Tensor:
        """Per returned sequence, how many positions the model read: up to (not including) the first
        end-of-sequence token after the prompt, else all but the last token."""
        R, L = seq.shape
        lengths = torch.full((R,), L - 1, dtype=torch.long)
        eos = self.config.eos_token_id
        if eos is None:
            return lengths
        eos = torch.as_tensor(eos).flatten().cpu()
        hits = torch.isin(seq[:, prompt_len:], eos)
        for r in range(R):
            where = hits[r].nonzero()
            if len(where):
                lengths[r] = prompt_len + int(where[0])
        return lengths

    def _hypotheses(self) -> list[torch.Tensor]:
        """Per pass, every slot's tokens so far (slots, length): the previous pass's, reordered, cut to
        where this pass starts (a crop drops rejected drafts), then what this pass fed."""
        hyps: list[torch.Tensor] = []
        for p in self.passes:
            prev = hyps[-1] if hyps else None
            if prev is not None and p.reorder is not None:
                prev = prev[p.reorder]
            if p.start == 0 or prev is None:
                if p.start != 0:
                    raise self.unassembled(f"the first pass starts at position {p.start}, expected 0 (use {REFUSED_OPTIONS['cache']})")
                hyps.append(p.fed.clone())
            else:
                hyps.append(torch.cat([prev[:, : p.start], p.fed], dim=1))
        return hyps

    def _lineage(self, hyps: list[torch.Tensor], seq: torch.Tensor, fed: int, candidates: range) -> list[tuple[int, int, int]]:
        """(pass, slot, rows valid up to) along the history of the returned sequence ``seq``: the passes
        whose slot holds ``seq``'s prefix, traced back through the reorders."""
        # the last pass that computed row fed-1 with the right prefix, in one of this input's slots
        end = None
        for j in range(len(self.passes) - 1, -1, -1):
            p, h = self.passes[j], hyps[j]
            if not p.start <= fed - 1 < p.start + p.fed.shape[1] or h.shape[1] < fed:
                continue
            match = [b for b in candidates if torch.equal(h[b, :fed], seq[:fed])]
            if match:
                end = (j, match[0])
                break
        if end is None:
            raise self.unassembled("expected a pass whose fed tokens equal a returned sequence, got none")
        j, slot = end
        chain = []
        while j >= 0:
            h = hyps[j][slot]
            n = min(h.shape[0], fed)
            agree = int((h[:n] == seq[:n]).long().cumprod(0).sum())
            chain.append((j, slot, agree))
            p = self.passes[j]
            slot = int(p.reorder[slot]) if p.reorder is not None else slot
            j -= 1
        chain.reverse()
        covered = torch.zeros(fed, dtype=torch.bool)
        for j, _, upto in chain:
            p = self.passes[j]
            covered[p.start: min(p.start + p.fed.shape[1], upto)] = True
        if not bool(covered.all()):
            raise self.unassembled(f"expected every position the model read to have a row, got {int((~covered).sum())} without one")
        return chain

    @staticmethod
    def _place_keys(rows: torch.Tensor, start: int, q: int, T: int, name: str) -> torch.Tensor:
        """Rows (heads, n, k) of a self-attention pass placed on key positions 0..T-1: a cache of
        ``k ≥ start+q`` slots holds positions 0..k-1 (a static cache's unused tail must be 0), a shorter
        one (sliding window) the last ``k`` positions. Weight placed past ``T`` is dropped, and then missed
        by the row-sum check of :meth:`assemble`."""
        heads, n, k = rows.shape
        end = start + q
        out = rows.new_zeros(heads, n, T)
        if k >= end:  # the tail a static cache has not filled yet carries no weight on real rows (checked in assemble)
            keep = min(k, T)
            out[..., :keep] = rows[..., :keep]
        else:
            out[..., end - k: end] = rows
        return out[..., :T]

    def _masks(self, seq: torch.Tensor, fed_len: torch.Tensor, lineages: list, weights: list, roles: list,
               returned_per_item: int, T: int) -> dict[str, torch.Tensor]:
        R = seq.shape[0]
        reached = _reached(fed_len, T)                                  # (R, T) positions read
        real = reached.clone()
        if not self.encoder_decoder:                                    # left padding of the prompt
            first = self.passes[0]
            given = self.prompt.get("attention_mask")                   # as the caller gave it: one row per input
            if isinstance(given, torch.Tensor) and given.dim() == 2:
                prompt = given.bool()[torch.arange(R) // returned_per_item]
            elif first.key_mask is not None:                            # as the first pass got it, per slot
                prompt = torch.stack([first.key_mask[lineage[0][1]] for lineage in lineages])
            else:
                prompt = None
            if prompt is not None:  # its first columns are the prompt's (a static cache's mask runs on)
                P = min(self._prompt_length(), prompt.shape[1], T)
                real[:, :P] &= prompt[:, :P]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        masks = {"self": causal & real[:, :, None] & real[:, None, :]}
        enc_mask = self.prompt.get("attention_mask")
        if "cross" in roles or "encoder" in roles:
            source = next(w.shape[-1] for w, role in zip(weights, roles) if role in ("cross", "encoder"))
            keys = (enc_mask.bool()[self._encoder_rows(enc_mask.shape[0], lineages, returned_per_item)]
                    if isinstance(enc_mask, torch.Tensor) and enc_mask.dim() == 2 and enc_mask.shape[1] == source
                    else torch.ones(R, source, dtype=torch.bool))
            masks["cross"] = reached[:, :, None] & keys[:, None, :]
            masks["encoder"] = keys[:, :, None] & keys[:, None, :]
        return masks


def _reached(fed_len: torch.Tensor, T: int) -> torch.Tensor:
    """(R, T): True at the positions each sequence's model read."""
    return torch.arange(T)[None, :] < fed_len[:, None]
