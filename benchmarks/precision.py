"""Training-step time in fp32 against bf16 autocast, for each chapter's full-profile model.

For every chapter that trains, its ``full``-profile model and batch shape (chapter 2's
forecaster, chapter 3's full-profile ViTime, chapter 4's AD transformer, chapter 5's 6 × 6 × 384 GPT)
on ``--device`` (default ``auto``: CUDA when present). Each measurement is ``--steps`` optimiser
steps after two warm-up steps, fp32 and bf16 alternating ``--repeats`` times so that drift hits
both alike. Prints ms/step (medians) per chapter and precision and, last, one line per chapter
``bf16_speedup_<chapter>: <fp32 ms / bf16 ms>`` (> 1: bf16 helps). The profiles' ``precision``
(:mod:`attnbook.profiles`) is ``auto`` (bf16 on a GPU) where this is expected to be > 1.
On a CPU without bf16 units expect < 1: why ``auto`` means fp32 there.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from attnbook import profiles
from attnbook.train import autocast, select_device, set_threads

Step = Callable[[], torch.Tensor]


def forecaster(device: torch.device) -> tuple[nn.Module, Step]:
    from attnbook.timeseries.model import Forecaster, ForecasterConfig

    s = profiles.get("distribution-effects", "full")
    model = Forecaster(ForecasterConfig(attn_dropout=s.attn_dropout)).to(device).train()
    x, y = torch.randn(s.train.batch_size, 100, device=device), torch.randn(s.train.batch_size, 20, device=device)
    return model, lambda: nn.functional.mse_loss(model(x), y)


def vitime(device: torch.device) -> tuple[nn.Module, Step]:
    from attnbook.vitime import realts
    from attnbook.vitime.model import ViTime

    s = profiles.get("vitime-harmonics", "full")
    config, mapping = s.model, s.mapping
    x, rows = realts.batch_images(realts.generate(s.train.batch_size, realts.RealTSConfig(), seed=0), mapping)
    x, rows = x.to(device), rows.to(device)
    model = ViTime(config).to(device).train()
    loss = realts.LossConfig(emd=s.emd)
    return model, lambda: realts.pretraining_loss(model.logits(x), rows, mapping, loss)


def ad_transformer(device: torch.device) -> tuple[nn.Module, Step]:
    from attnbook.rl import envs, sources
    from attnbook.rl import model as ad

    s = profiles.get("ad-compression", "full")
    histories = sources.bandit_histories(envs.bandit_tasks(256, s.arms, seed=0), s.horizon, s.source, seed=0)
    config = ad.ADConfig(n_states=1, n_actions=s.arms, n_ctx=s.horizon)
    batch = ad.Windows(histories, config, s.context_dropout).sample(s.train.batch_size, torch.Generator().manual_seed(0))
    batch = tuple(t.to(device) for t in batch)
    model = ad.ADTransformer(config).to(device).train()
    return model, lambda: model.loss(*batch)


def char_gpt(device: torch.device) -> tuple[nn.Module, Step]:
    from attnbook.charlm import GPT

    s = profiles.get("charlm-evolution", "full")
    d = s.datasets["tinyshakespeare"]
    config = s.model.config(vocab_size=65)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 65, (d.train.batch_size, config.block_size), generator=g).to(device)
    y = torch.randint(0, 65, (d.train.batch_size, config.block_size), generator=g).to(device)
    model = GPT(config).to(device).train()
    return model, lambda: model(x, y)[1]


CHAPTERS = {"distribution-effects": forecaster, "vitime-harmonics": vitime, "ad-compression": ad_transformer, "charlm-evolution": char_gpt}


def time_steps(model: nn.Module, step: Step, device: torch.device, dtype: torch.dtype | None, n: int) -> float:
    """Milliseconds per optimiser step (forward under autocast, backward, AdamW) over ``n`` steps."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def one() -> None:
        with autocast(device, dtype):
            loss = step()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(2):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1000.0 * (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (use ~50 on a GPU)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chapters", nargs="*", default=list(CHAPTERS), choices=list(CHAPTERS))
    args = parser.parse_args()
    device = select_device(args.device)
    threads = set_threads()
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else f'cpu ({threads} threads)'}")
    ratios = {}
    for name in args.chapters:
        model, step = CHAPTERS[name](device)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.repeats):
            times["fp32"].append(time_steps(model, step, device, None, args.steps))
            times["bf16"].append(time_steps(model, step, device, torch.bfloat16, args.steps))
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        ratios[name] = fp32 / bf16
        print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, fp32 {fp32:.1f} ms/step, bf16 {bf16:.1f} ms/step, "
              f"profile precision {profiles.get(name, 'full').hardware.precision!r}")
    for name, ratio in ratios.items():
        print(f"bf16_speedup_{name.replace('-', '_')}: {ratio:.2f}")


if __name__ == "__main__":
    main()
