"""Shared fixtures: small models of every family capture supports (no downloads)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(2)
# Every tolerance in these tests is written for float32 tensors built without a dtype: say so.
torch.set_default_dtype(torch.float32)

# CI replays the same examples every run (a red CI always means a change broke something);
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    # sdpa, the fused kernel that hides the weights, is what capture has to switch away from and back to;
    # named here rather than left to transformers' choice of default implementation.
    cfg = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=32,
                     attn_implementation="sdpa")
    model = BertModel(cfg).eval()
    assert model.config._attn_implementation == "sdpa", "tiny_bert: expected the sdpa attention implementation it was built with"
    return model


@pytest.fixture(scope="session")
def minilm():
    from attnbook import lm

    return lm.load("minilm")


@pytest.fixture()
def tiny_vit():
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=3).eval()
    # The fused kernel (timm's default where F.scaled_dot_product_attention exists, but timm's choice and
    # $TIMM_FUSED_ATTN's) hides the weights: on explicitly, so capture always has to switch it off and back on.
    for block in model.blocks:
        block.attn.fused_attn = True
    return model


@pytest.fixture()
def torch_encoder():
    torch.manual_seed(0)
    # Explicitly a layer the eval fast path accepts (batch_first, bias, relu, post-norm, even heads), which
    # skips the attention module: the case capture has to disable through torch.backends.mha.
    layer = torch.nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.1, activation="relu", batch_first=True,
                                             norm_first=False, bias=True)
    return torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()


@pytest.fixture()
def own_transformer():
    from attnbook.modules import BlockConfig, Transformer

    torch.manual_seed(0)
    return Transformer(BlockConfig(d_model=16, n_heads=4, d_ff=32, dropout=0.1), n_layers=2).eval()


def random_maps(L=2, B=2, H=3, Q=5, K=5, seed=0, labels=True, mask=None):
    """Row-stochastic maps from seeded random logits (optionally masked)."""
    from attnbook.maps import AttentionMaps

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(L, B, H, Q, K, generator=g) * 2
    if mask is not None:
        logits = logits.masked_fill(~mask[None, :, None], float("-inf"))
        w = torch.softmax(logits, -1).nan_to_num(0.0)
    else:
        w = torch.softmax(logits, -1)
    toks = [[f"t{b}_{k}" for k in range(K)] for b in range(B)] if labels else None
    qtoks = [[f"t{b}_{q}" for q in range(Q)] for b in range(B)] if labels else None
    return AttentionMaps(w, tuple(f"layer{i}" for i in range(L)), qtoks, toks, mask)
