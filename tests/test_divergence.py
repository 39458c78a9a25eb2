"""The registry of divergent weights paths (``attnbook.capture.divergence``) against Falcon's two paths
measured from a forward pass computed by hand (``attnbook.compat.falcon``)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from attnbook.capture.divergence import DIVERGENCES, TOLERANCE, Divergence, divergences
from attnbook.compat import falcon as fx
from attnbook.errors import InvalidInputError, UnsupportedModelError

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def table():
    return fx.paths_table()


def _falcon_entry(alibi: bool) -> Divergence:
    (entry,) = [d for d in DIVERGENCES if d.model_type == "falcon" and d.features["alibi"] is alibi]
    return entry


# --- which path is right -----------------------------------------------------------------------


def test_table_covers_every_combination(table):
    assert len(table) == len(fx.COMBINATIONS) * len(fx.IMPLEMENTATIONS) * 2
    assert set(table.kv_heads) == {1, 2, 4} and set(table.alibi) == {False, True} and set(table.padded) == {False, True}
    assert set(table.new_decoder_architecture) == {False, True} and set(table.parallel_attn) == {False, True}


def test_hand_forward_is_an_independent_reference_for_the_right_path(table):
    # Built with sdpa (from_pretrained's default): the default path equals the hand computation, the weights path does not.
    sdpa = table[table.implementation == "sdpa"]
    assert (sdpa.default_to_hand <= TOLERANCE).all(), sdpa[sdpa.default_to_hand > TOLERANCE]
    assert (sdpa.weights_to_hand > 100 * TOLERANCE).all()
    assert (sdpa.right_path == "default").all()
    # Built with eager and rotary: one path, and it is right.
    eager_rotary = table[(table.implementation == "eager") & ~table.alibi]
    assert (eager_rotary.right_path == "both").all()
    # Built with eager and ALiBi: one path, with the bias counted twice.
    eager_alibi = table[(table.implementation == "eager") & table.alibi]
    assert (eager_alibi.right_path == "neither").all() and (eager_alibi.delta_paths == 0).all()


def test_the_named_defect_accounts_for_the_whole_difference(table):
    # the weights path equals the hand computation with the defect put in (bool mask added as 1/0; ALiBi twice)
    assert (table.weights_to_replay <= TOLERANCE).all(), table[table.weights_to_replay > TOLERANCE]


def test_registry_predicts_a_divergence_exactly_where_the_paths_differ(table):
    assert table.diverges.any() and not table.diverges.all()
    wrong = table[table.predicted != table.diverges]
    assert wrong.empty, wrong
    # the features that decide: the implementation it was built with; nothing else
    assert (table.diverges == (table.implementation == "sdpa")).all()


@pytest.mark.parametrize("alibi", [False, True])
def test_registered_numbers_are_the_compat_case(alibi):
    entry = _falcon_entry(alibi)
    assert entry.tolerance == TOLERANCE == 1e-5
    assert entry.wrong_path.startswith("eager")
    assert entry.measured == pytest.approx(fx.compat_case_delta(alibi=alibi), rel=1e-3)
    assert entry.measured > entry.tolerance


def test_smallest_example_shows_the_defect():
    rotary = fx.smallest_example()
    assert rotary["length"] == 2 and len(rotary["input_ids"]) == 2
    assert rotary["delta_paths"] > 100 * TOLERANCE
    assert rotary["default_to_hand"] <= TOLERANCE and rotary["weights_to_replay"] <= TOLERANCE
    # the first token sees the second on the weights path; the last token has nothing after it to see
    assert rotary["future_weight"][0] > 0.01 and rotary["future_weight"][-1] == 0
    assert rotary["delta_per_position"][-1] <= TOLERANCE < rotary["delta_per_position"][0]
    alibi = fx.smallest_example(alibi=True)
    assert alibi["delta_paths"] > 100 * TOLERANCE and alibi["default_to_hand"] <= TOLERANCE
    assert max(alibi["future_weight"]) == 0  # causal, but biased twice


def test_hand_forward_refuses_other_models_and_bad_input():
    from transformers import GPT2Config, GPT2LMHeadModel

    with pytest.raises(UnsupportedModelError):
        fx.hand_forward(GPT2LMHeadModel(GPT2Config(vocab_size=99, n_positions=16, n_embd=16, n_layer=1, n_head=2)), torch.zeros(1, 3, dtype=torch.long))
    model = fx.build({"alibi": False}, num_hidden_layers=1)
    with pytest.raises(InvalidInputError):
        fx.hand_forward(model, torch.zeros(3, dtype=torch.long))
    with pytest.raises(InvalidInputError):
        fx.hand_forward(model, torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 4))
    with pytest.raises(InvalidInputError):
        fx.build({}, implementation="flash")


# --- the registry ------------------------------------------------------------------------------


class _Wrapper(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.head = nn.Linear(2, 2)
        self.blocks = nn.ModuleDict({"lm": inner})


def test_divergences_finds_falcon_inside_a_wrapper_once():
    falcon = fx.build({"alibi": False}, num_hidden_layers=1)
    assert divergences(falcon) == [("", _falcon_entry(False))]
    # the outermost PreTrainedModel only, not FalconForCausalLM.transformer again
    assert divergences(_Wrapper(falcon)) == [("blocks.lm", _falcon_entry(False))]
    assert divergences(_Wrapper(falcon.transformer)) == [("blocks.lm", _falcon_entry(False))]
    assert divergences(_Wrapper(fx.build({"alibi": True}, num_hidden_layers=1))) == [("blocks.lm", _falcon_entry(True))]
    assert divergences(_Wrapper(fx.build({"alibi": False}, "eager", num_hidden_layers=1))) == []


def test_divergences_is_empty_for_other_families():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel._from_config(GPT2Config(vocab_size=99, n_positions=16, n_embd=16, n_layer=1, n_head=2), attn_implementation="sdpa")
    llama = LlamaForCausalLM._from_config(LlamaConfig(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                      num_attention_heads=2), attn_implementation="sdpa")
    assert divergences(gpt2) == [] and divergences(_Wrapper(llama)) == [] and divergences(nn.Linear(2, 2)) == []
    with pytest.raises(InvalidInputError):
        divergences("falcon")


def test_matches_on_configs():
    from transformers import FalconConfig, LlamaConfig

    rotary, alibi = _falcon_entry(False), _falcon_entry(True)
    assert rotary.matches(FalconConfig(attn_implementation="sdpa", alibi=False))
    assert not rotary.matches(FalconConfig(attn_implementation="sdpa", alibi=True))
    assert alibi.matches(FalconConfig(attn_implementation="sdpa", alibi=True))
    assert not rotary.matches(FalconConfig(attn_implementation="eager", alibi=False))
    assert not rotary.matches(LlamaConfig(attn_implementation="sdpa"))
    assert not rotary.matches(None)
    assert rotary.matches(SimpleNamespace(model_type="falcon", _attn_implementation="sdpa", alibi=False))
    assert not rotary.matches(SimpleNamespace(model_type="falcon", alibi=False))   # a feature missing is not a match
    assert "falcon" in rotary.message() and "eager" in rotary.message()
    assert len({hash(d) for d in DIVERGENCES}) == len(DIVERGENCES)


def test_module_imports_without_transformers():
    code = "import sys, attnbook.capture.divergence as d; assert 'transformers' not in sys.modules; assert d.DIVERGENCES"
    subprocess.run([sys.executable, "-c", code], check=True)
