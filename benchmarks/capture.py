"""Capture overhead: a forward with capture vs a plain forward.

MiniLM-L6 at 128 tokens × batch 8 (plain = SDPA, captured = eager + hooks + copy to CPU) and
attnbook's own 2-layer block (plain = SDPA, captured = explicit softmax). Prints the median
of repeated timings and ``capture_overhead: <ratio> (goal <= 1.5)`` (the worse of the two); then
``generate_overhead``: a random 4-layer GPT-2 (d 128) generating 32 tokens by beam search (4 beams, 2
returned) from 4 prompts of 32 tokens, plainly vs under ``capture`` (eager path, every pass recorded,
the beams followed and the maps assembled per returned sequence — nothing recomputed).
"""

from __future__ import annotations

import statistics
import time

import torch

from attnbook import lm
from attnbook.capture import capture
from attnbook.modules import BlockConfig, Transformer


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(a, b, repeats: int = 21) -> tuple[float, float]:
    """Median time of ``a`` and of ``b``, run alternately so machine drift hits both alike."""
    a(), b()  # warm-up
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(seconds(a))
        tb.append(seconds(b))
    return statistics.median(ta), statistics.median(tb)


def ratio(model: torch.nn.Module, call, repeats: int = 21) -> tuple[float, float]:
    def plain():
        with torch.no_grad():
            call()

    def recorded():
        with torch.no_grad(), capture(model) as cap:
            call()
        cap.weights()

    return interleaved_medians(plain, recorded, repeats)


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    minilm = lm.load("minilm")
    ids = torch.randint(1000, 20000, (8, 128))
    ids[:, 0], ids[:, -1] = 101, 102
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    p, c = ratio(minilm.model, lambda: minilm.model(**inputs))
    print(f"minilm 8x128: plain {p * 1e3:.1f} ms, captured {c * 1e3:.1f} ms, ratio {c / p:.2f}")
    own = Transformer(BlockConfig(d_model=64, n_heads=4, d_ff=256, dropout=0.1), n_layers=2).eval()
    x = torch.randn(32, 100, 64)
    p2, c2 = ratio(own, lambda: own(x))
    print(f"own block 32x100x64: plain {p2 * 1e3:.1f} ms, captured {c2 * 1e3:.1f} ms, ratio {c2 / p2:.2f}")
    print(f"capture_overhead: {max(c / p, c2 / p2):.2f} (goal <= 1.5)")
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt = GPT2LMHeadModel._from_config(GPT2Config(vocab_size=500, n_embd=128, n_layer=4, n_head=4, n_positions=128, bos_token_id=0,
                                                  eos_token_id=0), attn_implementation="sdpa").eval()
    prompts = torch.randint(1, 500, (4, 32))
    p3, c3 = ratio(gpt, lambda: gpt.generate(prompts, max_new_tokens=32, num_beams=4, num_return_sequences=2, min_new_tokens=32,
                                             pad_token_id=0), repeats=7)
    print(f"gpt2 beam search 4x32+32: plain {p3 * 1e3:.1f} ms, captured {c3 * 1e3:.1f} ms")
    print(f"generate_overhead: {c3 / p3:.2f}")


if __name__ == "__main__":
    main()
