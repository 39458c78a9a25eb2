"""The compatibility matrix: capture on every family of ``attnbook.compat`` against its own library's
reference (weights within 1e-5, outputs unchanged at real tokens, hooks and flags restored after a
normal exit and after an exception), or refused with the expected typed error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnbook.capture import capture
from attnbook.compat import CASES, HF_CASES, TIMM_CASES, TORCH_CASES, Case, check
from attnbook.errors import UnsupportedModelError


def test_the_matrix_covers_what_it_promises():
    assert len(HF_CASES) >= 25 and len({c.name for c in HF_CASES}) == len(HF_CASES)
    assert len({c.name for c in TIMM_CASES}) >= 8
    recorded = {c.recorded for c in CASES if c.expect == "recorded"}
    assert {"self", "self + cross", "per call", "windows"} <= recorded
    assert any(c.expect == "refused" for c in TIMM_CASES) and all(c.note for c in CASES if c.expect == "refused")
    assert any(c.real_tokens is not None for c in HF_CASES) and any(c.real_tokens is not None for c in TORCH_CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.library}-{c.name}" for c in CASES])
def test_case(case):
    result = check(case)
    assert result.restored, f"{case.name}: a hook or flag was left behind"
    assert result.ok, f"{case.name}: {result.problem or result.refusal}"
    if case.expect == "recorded":
        assert result.layers > 0 and result.weights_diff <= 1e-5 and result.outputs_diff <= 1e-5
    else:
        assert result.refusal.startswith(case.refusal.__name__)


class _Silent(nn.Module):
    """An attention-like layer with a hidden softmax: nothing capture can read."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, -1)
        return (q @ k.transpose(-1, -2)).softmax(-1) @ v


def _one_mha_one_silent():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
            self.hidden_attention = _Silent()

        def forward(self, x):
            return self.hidden_attention(self.mha(x, x, x, need_weights=False)[0])

    return Case("torch", "silent", lambda: (Model().eval(), {"args": (torch.randn(2, 3, 8),)}), None,
                expect="refused", refusal=UnsupportedModelError, note="a softmax no hook can reach")


def test_the_runner_catches_a_silent_partial_recording():
    """A case that fails is reported as failing: the runner is not a rubber stamp."""
    case = _one_mha_one_silent()
    result = check(case)
    assert result.ok and "hidden_attention" in result.refusal  # refused, naming the layer it cannot read
    wrong = Case("torch", "silent-as-recorded", case.build, lambda m, i: {"self": [torch.zeros(2, 2, 3, 3)]})
    failed = check(wrong)
    assert not failed.ok and failed.problem
    model, inputs = case.build()
    with torch.no_grad(), capture(model, layers="mha") as cap:  # a subset, because the caller chose it
        model(*inputs["args"])
    assert cap.layer_names == ["mha"]
