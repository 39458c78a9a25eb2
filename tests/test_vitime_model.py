"""ViTime-style MAE ViT: official names and shapes, capture, token shuffle, official checkpoints."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
import torch

from attnbook.capture import capture
from attnbook.errors import CheckpointError, InvalidInputError, MissingResourceError
from attnbook.maps import AttentionMaps
from attnbook.vitime.model import PRESETS, ViTime, ViTimeConfig, preset, sincos_pos_embed, unshuffle_attention
from attnbook.vitime.weights import config_from_args, config_to_args, load_official, read_official, save_official

TINY = ViTimeConfig(h=8, history_len=16, future_len=16, patch=(4, 8), embed_dim=16, depth=2, num_heads=2,
                    decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2)

TOP_LEVEL = {"patch_embed", "cls_token", "pos_embed", "blocks", "norm", "decoder_embed", "mask_token",
             "decoder_pos_embed", "decoder_blocks", "decoder_norm", "decoder_pred"}
BLOCK_KEYS = {f"{p}.{s}" for p in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2") for s in ("weight", "bias")}


def build(config: ViTimeConfig, seed: int = 0, meta: bool = False, **kw) -> ViTime:
    torch.manual_seed(seed)
    if meta or config.embed_dim >= 512:  # official sizes: shapes only, no memory or init time
        with torch.device("meta"):
            return ViTime(config, **kw)
    return ViTime(config, **kw).eval()


def images(config: ViTimeConfig, batch: int = 2, channels: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, config.width, config.h, generator=torch.Generator().manual_seed(seed))


# --- names, shapes, presets ---------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRESETS))
def test_state_dict_keys_are_the_official_names(name):
    c = preset(name)
    sd = build(c, meta=True).state_dict()
    assert {k.split(".")[0] for k in sd} == {"model"}
    assert {k.split(".")[1] for k in sd} == TOP_LEVEL
    E, Ed, (ph, pw), N = c.embed_dim, c.decoder_embed_dim, c.patch, c.n_patches
    expected = {
        "model.cls_token": (1, 1, E),
        "model.pos_embed": (1, N + 1, E),
        "model.mask_token": (1, 1, Ed),
        "model.decoder_pos_embed": (1, N + 1, Ed),
        "model.patch_embed.proj.weight": (E, 1, ph, pw),
        "model.patch_embed.proj.bias": (E,),
        "model.blocks.0.attn.qkv.weight": (3 * E, E),
        "model.blocks.0.attn.proj.weight": (E, E),
        "model.blocks.0.mlp.fc1.weight": (4 * E, E),
        "model.blocks.0.mlp.fc2.weight": (E, 4 * E),
        "model.norm.weight": (E,),
        "model.decoder_embed.weight": (Ed, E),
        "model.decoder_blocks.0.attn.qkv.weight": (3 * Ed, Ed),
        "model.decoder_norm.bias": (Ed,),
        "model.decoder_pred.weight": (ph * pw, Ed),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    for prefix, depth in (("model.blocks.", c.depth), ("model.decoder_blocks.", c.decoder_depth)):
        indices = {int(re.match(re.escape(prefix) + r"(\d+)\.", k).group(1)) for k in sd if k.startswith(prefix)}
        assert indices == set(range(depth))
        assert {k[len(prefix) + 2:] for k in sd if k.startswith(prefix + "0.")} == BLOCK_KEYS
    assert len(sd) == 14 + 12 * (c.depth + c.decoder_depth)


def test_preset_numbers_from_the_note():
    strip, grid4, official = preset("strip"), preset("grid4"), preset("official")
    assert (strip.width, strip.h, strip.patch, strip.n_patches) == (1232, 64, (64, 16), 77)
    assert (strip.grid_h, strip.grid_w) == (1, 77)
    assert (grid4.patch, grid4.grid_h, grid4.n_patches) == ((16, 16), 4, 308)
    for c in (strip, grid4):
        assert (c.embed_dim, c.depth, c.num_heads, c.decoder_embed_dim, c.decoder_depth, c.decoder_num_heads) == (128, 4, 4, 64, 2, 4)
        assert (c.history_len, c.future_len, c.max_scal, c.mlp_ratio) == (512, 720, 3.5, 4.0)
    assert (official.width, official.h, official.patch, official.n_patches) == (2464, 128, (4, 32), 2464)
    assert (official.embed_dim, official.depth, official.num_heads) == (1024, 12, 16)
    assert (official.decoder_embed_dim, official.decoder_depth, official.decoder_num_heads) == (512, 6, 16)
    m = build(official)
    assert m.n_parameters() == 170_796_160  # the note: 170.8 M trainable
    assert m.n_parameters(trainable=False) == 2465 * (1024 + 512)  # 3.8 M frozen positions
    assert len(m.state_dict()) == 230
    assert 1.05e6 < build(strip, meta=True).n_parameters() < 1.15e6  # "≈ 1.1 M"
    assert 0.9e6 < build(grid4, meta=True).n_parameters() < 1.0e6  # "≈ 0.95 M"
    assert preset("mini-strip") == strip and preset("grid") == grid4 and preset("strip", h=128).h == 128
    assert strip.mapping_kwargs() == {"history_len": 512, "future_len": 720, "bins": 64, "patch": (64, 16), "max_scal": 3.5,
                                     "future_fill": "blank"}
    with pytest.raises(InvalidInputError, match="name"):
        preset("huge")


@pytest.mark.parametrize("name", ["strip", "grid4", "grid4-small"])
def test_forward_shapes_per_preset(name):
    c = preset(name)
    m = build(c)
    with torch.no_grad():
        y = m(images(c, batch=1))
        z = m.logits(images(c, batch=1))
    assert y.shape == z.shape == (1, 1, c.width, c.h)
    assert torch.allclose(y.sum(-1), torch.ones(1, 1, c.width), atol=1e-5)


def test_channels_are_folded_into_the_batch_as_official():
    m = build(TINY)
    x = images(TINY, batch=2, channels=3)
    with torch.no_grad():
        y = m(x)
        one = m(x[:, 1:2])
    assert y.shape == (2, 3, TINY.width, TINY.h)
    assert torch.allclose(y[:, 1:2], one, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(m(x, temperature=2.0), torch.softmax(m.logits(x) / 2.0, -1), atol=1e-6)
    sig = build(TINY.replace(output="sigmoid"))
    with torch.no_grad():
        assert torch.allclose(sig(x), torch.sigmoid(sig.logits(x)))


def reference_pos_embed(dim: int, gh: int, gw: int) -> np.ndarray:
    """The MAE recipe as the design note states it (numpy, meshgrid with the width first)."""

    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.stack(np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32), indexing="xy"), 0).reshape(2, 1, gh, gw)
    emb = np.concatenate([one(dim // 2, grid[0]), one(dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, dim]), emb], axis=0)


def test_positions_are_the_fixed_2d_sincos_table_in_raster_order():
    c = preset("grid4")
    m = build(c)
    pos = m.model.pos_embed.detach()[0]
    assert not m.model.pos_embed.requires_grad and not m.model.decoder_pos_embed.requires_grad
    assert torch.allclose(pos, torch.from_numpy(reference_pos_embed(128, c.grid_h, c.grid_w)).float(), atol=1e-6)
    assert torch.allclose(m.model.decoder_pos_embed.detach()[0], torch.from_numpy(reference_pos_embed(64, c.grid_h, c.grid_w)).float(), atol=1e-6)
    assert torch.equal(pos[0], torch.zeros(128))
    tok = pos[1:].reshape(c.grid_h, c.grid_w, 128)  # token r·grid_w + c
    assert torch.allclose(tok[0, :, :64], tok[3, :, :64]) and not torch.allclose(tok[:, 0, :64], tok[:, 5, :64])  # columns
    assert torch.allclose(tok[:, 0, 64:], tok[:, 9, 64:]) and not torch.allclose(tok[0, :, 64:], tok[2, :, 64:])  # rows
    assert sincos_pos_embed(16, 2, 3, rope=True).shape == (7, 16)


def test_patchify_layout_and_round_trip():
    m = build(TINY)
    img = torch.arange(TINY.h * TINY.width, dtype=torch.float32).reshape(1, 1, TINY.h, TINY.width)
    p = m.model.patchify(img)
    assert p.shape == (1, TINY.n_patches, 32)
    # token 1 = value-row block 0, time-column block 1; its entry i·pw + j is pixel (i, 8 + j)
    assert p[0, 1, 2 * 8 + 3] == img[0, 0, 2, 8 + 3]
    assert p[0, TINY.grid_w, 0] == img[0, 0, 4, 0]
    assert torch.equal(m.model.unpatchify(p), img)


# --- capture and the token shuffle ------------------------------------------------------------

def test_capture_records_encoder_attention_with_cls_and_patches():
    c = preset("strip")
    m = build(c)
    x = images(c, batch=2)
    blocks = [*m.model.blocks, *m.model.decoder_blocks]
    for b in blocks:  # the fused kernel on, as the timm Blocks run by default where SDPA exists: set, not assumed
        b.attn.fused_attn = True
    with torch.no_grad(), capture(m) as cap:
        m(x)
    assert all(b.attn.fused_attn for b in blocks)  # switched back on after the capture
    maps = cap.maps
    assert maps.layer_names == tuple(f"model.blocks.{i}.attn" for i in range(4)) + tuple(f"model.decoder_blocks.{j}.attn" for j in range(2))
    assert maps.shape == (6, 2, 4, 78, 78)  # CLS + 77 patches
    with torch.no_grad(), capture(m, layers="model.blocks.*") as enc:
        m(x)
    assert enc.maps.shape == (4, 2, 4, 78, 78)
    assert torch.equal(enc.weights(), maps.weights[:4])


def test_shuffled_encoder_unpermuted_equals_raster():
    c = preset("grid4", depth=2, decoder_depth=1)
    raster = build(c)
    shuffled = ViTime(c, token_order="shuffle", seed=3).eval()
    shuffled.load_state_dict(raster.state_dict())
    x = images(c, batch=2)
    with torch.no_grad(), capture(raster) as cap_r:
        y_r = raster(x)
    assert raster.last_permutation is None
    with torch.no_grad(), capture(shuffled) as cap_s:
        y_s = shuffled(x)
    ids = shuffled.last_permutation
    assert ids.shape == (2, c.n_patches) and not torch.equal(ids[0], ids[1])
    assert (y_r - y_s).abs().max() < 1e-5  # positions are added before the shuffle
    r, s = cap_r.maps, cap_s.maps
    assert not torch.allclose(s.weights[:2], r.weights[:2], atol=1e-3)  # encoder maps come out permuted
    fixed = unshuffle_attention(s, ids)
    assert isinstance(fixed, AttentionMaps) and fixed.meta["unshuffled_layers"] == ["model.blocks.0.attn", "model.blocks.1.attn"]
    assert torch.allclose(fixed.weights, r.weights, atol=1e-5)  # encoder un-permuted, decoder untouched
    assert torch.allclose(unshuffle_attention(s.weights[:2], ids), r.weights[:2], atol=1e-5)
    # a new forward draws a new permutation; the same seed gives the same sequence
    with torch.no_grad():
        shuffled(x)
    assert not torch.equal(shuffled.last_permutation, ids)
    again = ViTime(c, token_order="shuffle", seed=3).eval()
    with torch.no_grad():
        again(x)
    assert torch.equal(again.last_permutation, ids)


def test_unshuffle_against_an_explicit_loop():
    g = torch.Generator().manual_seed(0)
    B, H, N = 2, 3, 6
    raster = torch.softmax(torch.randn(1, B, H, N + 1, N + 1, generator=g), -1)
    ids = torch.stack([torch.randperm(N, generator=g) for _ in range(B)])
    shuffled = torch.empty_like(raster)
    for b in range(B):
        order = [0] + [int(i) + 1 for i in ids[b]]  # shuffled position p holds raster token order[p]
        for p in range(N + 1):
            for q in range(N + 1):
                shuffled[0, b, :, p, q] = raster[0, b, :, order[p], order[q]]
    assert torch.equal(unshuffle_attention(shuffled, ids), raster)
    labels = [["CLS"] + [f"t{int(i)}" for i in ids[b]] for b in range(B)]
    maps = unshuffle_attention(AttentionMaps(shuffled, ("model.blocks.0.attn",), labels, labels), ids)
    assert torch.equal(maps.weights, raster)
    assert maps.tokens(1) == ["CLS"] + [f"t{i}" for i in range(N)]
    same = unshuffle_attention(AttentionMaps(shuffled, ("model.decoder_blocks.0.attn",)), ids)
    assert torch.equal(same.weights, shuffled)  # decoder layers are raster already


@pytest.mark.parametrize("ids", [torch.tensor([0, 1, 1, 2, 3, 4]), torch.arange(5), torch.arange(6).float(), torch.tensor([0, 1, 2, 3, 4, 9])])
def test_unshuffle_rejects_bad_permutations(ids):
    w = torch.full((1, 1, 2, 7, 7), 1 / 7)
    with pytest.raises(InvalidInputError, match="ids_shuffle"):
        unshuffle_attention(w, ids)


def test_token_order_option_is_validated():
    with pytest.raises(InvalidInputError, match="token_order"):
        ViTime(TINY, token_order="random")
    with pytest.raises(InvalidInputError, match="seed"):
        ViTime(TINY, token_order="shuffle", seed="1")
    m = build(TINY).set_token_order("shuffle", seed=0)
    assert m.token_order == "shuffle"


# --- input and config validation ---------------------------------------------------------------

@pytest.mark.parametrize(
    "x",
    [
        torch.rand(1, 1, 32, 4),  # h wrong
        torch.rand(1, 1, 31, 8),  # W wrong
        torch.rand(1, 1, 8, 32),  # transposed: (h, W) instead of (W, h)
        torch.rand(1, 32, 8),  # 3-D
        torch.ones(1, 1, 32, 8, dtype=torch.long),
        torch.full((1, 1, 32, 8), float("nan")),
    ],
)
def test_bad_images_are_refused(x):
    with pytest.raises(InvalidInputError, match=r"^x:"):
        build(TINY)(x)


def test_bad_temperature_is_refused():
    with pytest.raises(InvalidInputError, match="temperature"):
        build(TINY)(images(TINY), temperature=0)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"patch": (3, 8)}, "patch"),  # 8 bins not divisible by 3
        ({"future_len": 15}, "patch"),  # 31 columns not divisible by 8
        ({"patch": (0, 8)}, "patch"),
        ({"patch": (4,)}, "patch"),
        ({"h": 0}, "h"),
        ({"history_len": 2.5}, "history_len"),
        ({"depth": 0}, "depth"),
        ({"decoder_depth": -1}, "decoder_depth"),
        ({"num_heads": 3}, "num_heads"),
        ({"decoder_num_heads": 3}, "decoder_num_heads"),
        ({"embed_dim": 18, "num_heads": 2}, "embed_dim"),
        ({"mlp_ratio": 0}, "mlp_ratio"),
        ({"max_scal": float("inf")}, "max_scal"),
        ({"in_chans": True}, "in_chans"),
        ({"output": "argmax"}, "output"),
        ({"rope": 1}, "rope"),
    ],
)
def test_bad_config_values_name_the_field(changes, field):
    with pytest.raises(InvalidInputError, match=rf"^{field}:"):
        TINY.replace(**changes)


def test_config_dict_round_trip():
    assert ViTimeConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(InvalidInputError, match="config"):
        ViTimeConfig.from_dict({**TINY.to_dict(), "dims": 3})


# --- official checkpoints --------------------------------------------------------------------------

def test_official_format_round_trip_gives_identical_outputs(tmp_path):
    m = build(TINY, seed=5)
    path = save_official(m, m.config, tmp_path / "ViTime_Model.pth")
    raw = torch.load(path, map_location="cpu", weights_only=False)  # our own file: the official way
    assert set(raw) == {"model", "args"} and isinstance(raw["args"], argparse.Namespace)
    assert raw["args"].size == [16, 0, 16] and raw["args"].patch_size == [4, 8] and raw["args"].h == 8
    loaded = load_official(path)
    assert loaded.config == TINY and loaded.args["maxScal"] == 3.5 and not loaded.training
    x = images(TINY)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_the_future_fill_travels_with_the_checkpoint(tmp_path):
    drafted = TINY.replace(future_fill="seasonal average")
    path = save_official(build(drafted, seed=5), drafted, tmp_path / "drafted.pth")
    assert load_official(path).config == drafted
    args = vars(config_to_args(drafted))
    del args["futureFill"]  # a release checkpoint has no such field: its canvas is blank
    assert config_from_args(args).future_fill == "blank"


def test_module_prefixed_checkpoint_loads(tmp_path):
    m = build(TINY, seed=6)
    sd = {f"module.{k}": v for k, v in m.state_dict().items()}
    torch.save({"model": sd, "args": vars(save_args(m))}, tmp_path / "dp.pth")  # args as a plain dict too
    loaded = load_official(tmp_path / "dp.pth")
    x = images(TINY)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))


def save_args(m: ViTime) -> argparse.Namespace:
    from attnbook.vitime.weights import config_to_args

    return config_to_args(m.config)


def test_official_args_with_model_size_only(tmp_path):
    official = argparse.Namespace(h=128, size=[1024, 48, 1440], patch_size=(4, 32), modelSize=1, maxScal=3.5, dropout=0.1, flag="test")
    assert config_from_args(official) == preset("official")
    assert config_from_args(argparse.Namespace(h=64, size=[512, 0, 720], expandData=2, patch_size=[8, 32], modelSize=0.125)).history_len == 1024
    # modelSize 0.125: E 128, depth int(1.5) = 1, heads 2, decoder 64 with int(0.5) = 0 blocks (the note's caveat)
    args = argparse.Namespace(h=8, size=[16, 0, 16], patch_size=[4, 8], modelSize=0.125, maxScal=np.float64(2.5), dropout=0.1, lossType="EMD")
    cfg = config_from_args(args)
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.decoder_embed_dim, cfg.decoder_depth, cfg.max_scal) == (128, 1, 2, 64, 0, 2.5)
    m = build(cfg, seed=7)
    torch.save({"model": m.state_dict(), "args": args}, tmp_path / "ms.pth")  # numpy scalar inside the Namespace
    loaded = load_official(tmp_path / "ms.pth")
    assert loaded.config == cfg
    with torch.no_grad():
        assert torch.equal(loaded(images(cfg)), m(images(cfg)))
    assert load_official(tmp_path / "ms.pth", num_heads=8).config.num_heads == 8
    assert not any(k.startswith("model.decoder_blocks.") for k in m.state_dict())


MARKER: list[str] = []


def _payload_ran() -> str:
    MARKER.append("ran")
    return "pwned"


class Evil:
    def __reduce__(self):
        return (_payload_ran, ())


def test_pickle_that_needs_code_is_refused(tmp_path):
    """load_official names the global a checkpoint needs and refuses it before it runs; the last step
    shows the file really needs code (loaded with weights_only=False, the payload runs)."""
    m = build(TINY)
    MARKER.clear()
    torch.save({"model": m.state_dict(), "args": save_args(m), "extra": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="_payload_ran"):
        load_official(tmp_path / "evil.pth")
    assert MARKER == []
    try:  # sanity check of the test itself, last: the same file, loaded the unsafe way, runs the payload
        unsafe = torch.load(tmp_path / "evil.pth", map_location="cpu", weights_only=False)
        assert MARKER == ["ran"] and unsafe["extra"] == "pwned", "the refused file must really need code"
    finally:
        MARKER.clear()


def test_v1_checkpoint_is_refused_with_a_clear_message(tmp_path):
    sd = {"model.ViTimeTokenizer.0.norm1.weight": torch.ones(16), "model.patch_embed.proj.weight": torch.ones(16, 1, 4, 8),
          "RefiningModel.cls_conv.weight": torch.ones(1, 8, 1, 1)}
    torch.save({"model": sd, "args": argparse.Namespace(h=8, size=[16, 0, 16], patch_size=[4, 8], modelSize=1, RefiningModel=True)}, tmp_path / "ViTime_V1.pth")
    with pytest.raises(CheckpointError, match=r"V1.*ViTimeTokenizer"):
        load_official(tmp_path / "ViTime_V1.pth")


def test_shape_mismatch_is_refused(tmp_path):
    m = build(TINY)
    sd = dict(m.state_dict())
    sd["model.blocks.1.mlp.fc1.weight"] = torch.zeros(32, 16)
    torch.save({"model": sd, "args": save_args(m)}, tmp_path / "bad_shape.pth")
    with pytest.raises(CheckpointError, match=r"model\.blocks\.1\.mlp\.fc1\.weight: file \(32, 16\), model \(64, 16\)"):
        load_official(tmp_path / "bad_shape.pth")
    # args that disagree with the tensors: named in words
    torch.save({"model": m.state_dict(), "args": argparse.Namespace(**{**vars(save_args(m)), "h": 16})}, tmp_path / "bad_args.pth")
    with pytest.raises(CheckpointError, match=r"n_tokens: args/config give 17, tensors give 9"):
        load_official(tmp_path / "bad_args.pth")
    torch.save({"model": m.state_dict(), "args": config_from_args_dict(m, embed_dim=32, decoder_embed_dim=16)}, tmp_path / "bad_dim.pth")
    with pytest.raises(CheckpointError, match=r"embed_dim: args/config give 32, tensors give 16"):
        load_official(tmp_path / "bad_dim.pth")


def config_from_args_dict(m: ViTime, **changes) -> dict:
    return {**vars(save_args(m)), **changes}


def test_missing_or_extra_keys_and_nonfinite_weights_are_refused(tmp_path):
    m = build(TINY)
    sd = dict(m.state_dict())
    del sd["model.decoder_pred.bias"]
    torch.save({"model": sd, "args": save_args(m)}, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing keys \['model.decoder_pred.bias'\]"):
        load_official(tmp_path / "missing.pth")
    sd = {**m.state_dict(), "channel_combiner.block.0.weight": torch.ones(16, 2, 1, 1)}
    torch.save({"model": sd, "args": save_args(m)}, tmp_path / "combiner.pth")
    with pytest.raises(CheckpointError, match="multi-channel"):
        load_official(tmp_path / "combiner.pth")
    sd = {**m.state_dict(), "model.blocks.2.norm1.weight": torch.ones(16)}
    torch.save({"model": sd, "args": save_args(m)}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="depth"):
        load_official(tmp_path / "extra.pth")
    sd = dict(m.state_dict())
    sd["model.norm.weight"] = torch.full((16,), float("nan"))
    torch.save({"model": sd, "args": save_args(m)}, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match=r"non-finite values in \['model.norm.weight'\]"):
        load_official(tmp_path / "nan.pth")


def test_files_that_are_not_vitime_checkpoints(tmp_path):
    m = build(TINY)
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match="got a Tensor"):
        load_official(tmp_path / "tensor.pth")
    torch.save(m.state_dict(), tmp_path / "bare.pth")
    with pytest.raises(CheckpointError, match="without 'model'.*bare state dict"):
        load_official(tmp_path / "bare.pth")
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="without 'model'"):
        load_official(tmp_path / "other.pth")
    torch.save({"model": {"fc.weight": torch.ones(2, 2)}, "args": save_args(m)}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="official ViTime checkpoint"):
        load_official(tmp_path / "foreign.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        load_official(tmp_path / "garbage.pth")
    path = save_official(m, None, tmp_path / "ok.pth")
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(CheckpointError, match="ok.pth"):
        load_official(path)
    torch.save({"model": m.state_dict()}, tmp_path / "no_args.pth")
    with pytest.raises(CheckpointError, match="args"):
        load_official(tmp_path / "no_args.pth")
    assert load_official(tmp_path / "no_args.pth", config=TINY).config == TINY
    assert read_official(tmp_path / "no_args.pth", config=TINY).args is None


def test_missing_file_is_a_missing_resource(tmp_path):
    with pytest.raises(MissingResourceError, match="ViTime_Model.pth"):
        load_official(tmp_path / "ViTime_Model.pth")


def test_save_official_checks_its_arguments(tmp_path):
    m = build(TINY)
    with pytest.raises(InvalidInputError, match="config"):
        save_official(m, TINY.replace(max_scal=2.0), tmp_path / "x.pth")
    with pytest.raises(InvalidInputError, match="model"):
        save_official(torch.nn.Linear(2, 2), TINY, tmp_path / "x.pth")
