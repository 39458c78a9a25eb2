"""timm families for the compatibility matrix: tiny random models and timm's own attention reference.

Every case builds a seeded, randomly initialised model of a few thousand parameters (depth 1–2 per
stage, 2–4 heads; CoaT 8) and an input batch of two 32 × 32 images (EfficientFormer 224 × 224: its
attention biases are fixed at the 7 × 7 grid of a 224 image). The reference is what
timm itself offers for reading attention maps: :class:`timm.utils.AttentionExtract` with
``method="hook"``, hooked on the ``attn_drop`` module that each family applies right after its
softmax. Fused attention (``F.scaled_dot_product_attention``) never calls ``attn_drop``, so the
reference switches ``fused_attn`` off on every module that has it for the one forward pass, and
restores it — and every module's ``training`` flag, which ``AttentionExtract`` sets — afterwards.

Families whose attention cannot be read by hooking a module (the softmax is inline, or no
token × token matrix exists) are listed with ``expect="refused"`` and the reason in ``note``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import UnsupportedModelError
from .case import Case, Reference

IMAGE = 32     # side of the input images, unless a family needs another
BATCH = 2
NUM_CLASSES = 10

#: module names (fnmatch patterns) carrying the attention probabilities: timm applies ``attn_drop``
#: to the softmax output in every family below
ATTN_DROP = "*attn.attn_drop"


def _builder(make: Callable[[], nn.Module], image: int = IMAGE) -> Callable[[], tuple[nn.Module, dict[str, Any]]]:
    """``build`` of a case: the model made under seed 0, in eval mode, and a batch of random images."""

    def build() -> tuple[nn.Module, dict[str, Any]]:
        torch.manual_seed(0)
        model = make().eval()
        return model, {"args": (torch.randn(BATCH, 3, image, image),)}

    return build


def extract_reference(kinds: dict[str, list[str]], fold_windows: bool = False) -> Callable[[nn.Module, dict[str, Any]], Reference]:
    """A reference reading the weights with ``timm.utils.AttentionExtract(method="hook")``.

    ``kinds`` maps "self" / "cross" to fnmatch patterns of the modules whose outputs are the
    attention weights. The weights come back per kind in the order the modules are called (timm
    returns them in module order; a pre-hook records the call order, and a module called twice is
    an error since ``AttentionExtract`` keeps only its last output). With ``fold_windows`` a 5-D
    (batch, windows, heads, N, N) output is folded to (batch·windows, heads, N, N), the layout
    Swin's windowed attention produces itself.
    """

    def reference(model: nn.Module, inputs: dict[str, Any]) -> Reference:
        from timm.utils import AttentionExtract

        patterns = [p for group in kinds.values() for p in group]
        modules = dict(model.named_modules())
        flags = {m: ("fused_attn" in vars(m), m.fused_attn) for m in model.modules() if hasattr(m, "fused_attn")}
        training = {m: m.training for m in model.modules()}
        calls: list[str] = []
        handles: list[Any] = []
        extractor = None
        try:
            for m in flags:
                m.fused_attn = False
            extractor = AttentionExtract(model, names=patterns, mode="eval", method="hook")
            for name in extractor.names:
                handles.append(modules[name].register_forward_pre_hook(lambda _m, _a, name=name: calls.append(name)))
            with torch.no_grad():
                outputs = extractor(*inputs["args"])
        finally:
            if extractor is not None and extractor.hooks is not None:
                handles.extend(extractor.hooks._handles)
            for handle in handles:
                handle.remove()
            for m, (own, value) in flags.items():
                if own:
                    m.fused_attn = value
                else:  # the flag was a class attribute: drop the instance copy
                    del m.fused_attn
            for m, mode in training.items():
                m.training = mode
        twice = sorted({n for n in calls if calls.count(n) > 1})
        if twice:
            raise RuntimeError(f"AttentionExtract keeps one output per module, but {twice} ran more than once")
        ref: Reference = {}
        for name in calls:
            weights = outputs[name].detach()
            if fold_windows and weights.dim() == 5:
                weights = weights.flatten(0, 1)
            kind = next(k for k, group in kinds.items() if any(fnmatch.fnmatchcase(name, p) for p in group))
            ref.setdefault(kind, []).append(weights)
        return ref

    return reference


def _recorded(name: str, make: Callable[[], nn.Module], patterns: list[str] | None = None, *, cross: list[str] | None = None,
              recorded: str = "self", note: str = "", image: int = IMAGE) -> Case:
    kinds = {"self": patterns or [ATTN_DROP], **({"cross": cross} if cross else {})}
    return Case("timm", name, _builder(make, image), extract_reference(kinds, fold_windows=recorded == "windows"),
                recorded=recorded, note=note)


def _refused(name: str, make: Callable[[], nn.Module], note: str, image: int = IMAGE) -> Case:
    return Case("timm", name, _builder(make, image), None, expect="refused", refusal=UnsupportedModelError, note=note)


# --- tiny models ------------------------------------------------------------------------------------

_VIT = dict(img_size=IMAGE, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=NUM_CLASSES)


def _vit(**extra: Any) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(**{**_VIT, **extra})


def _deit() -> nn.Module:
    import timm

    return timm.create_model("deit_tiny_patch16_224", pretrained=False, **_VIT)


def _deit_distilled() -> nn.Module:
    from timm.models.deit import VisionTransformerDistilled

    return VisionTransformerDistilled(**_VIT)


def _beit() -> nn.Module:
    from timm.models.beit import Beit

    return Beit(**_VIT, use_abs_pos_emb=False, use_rel_pos_bias=True, init_values=0.1)


def _eva() -> nn.Module:
    from timm.models.eva import Eva

    return Eva(**_VIT, use_rot_pos_emb=True, ref_feat_shape=(4, 4), swiglu_mlp=True)


def _naflexvit() -> nn.Module:
    from timm.models.naflexvit import NaFlexVit, NaFlexVitCfg

    cfg = NaFlexVitCfg(patch_size=8, embed_dim=32, depth=2, num_heads=2, reg_tokens=2, global_pool="avg")
    return NaFlexVit(cfg, img_size=IMAGE, num_classes=NUM_CLASSES)


def _cait() -> nn.Module:
    from timm.models.cait import Cait

    return Cait(**_VIT, depth_token_only=2)


def _pit() -> nn.Module:
    from timm.models.pit import PoolingVisionTransformer

    return PoolingVisionTransformer(img_size=IMAGE, patch_size=8, stride=4, base_dims=[16, 16], depth=[1, 1], heads=[2, 4],
                                    num_classes=NUM_CLASSES)


def _twins_pcpvt() -> nn.Module:
    from timm.models.twins import Twins

    return Twins(img_size=IMAGE, patch_size=4, embed_dims=(16, 32), num_heads=(2, 2), mlp_ratios=(2, 2), depths=(1, 1),
                 sr_ratios=(2, 1), num_classes=NUM_CLASSES)


def _twins_svt() -> nn.Module:
    from timm.models.twins import Twins

    return Twins(img_size=IMAGE, patch_size=4, embed_dims=(16,), num_heads=(2,), mlp_ratios=(2,), depths=(2,),
                 sr_ratios=(2,), wss=(4,), num_classes=NUM_CLASSES)


def _pvt_v2() -> nn.Module:
    from timm.models.pvt_v2 import PyramidVisionTransformerV2

    return PyramidVisionTransformerV2(depths=(1, 1), embed_dims=(16, 32), num_heads=(2, 2), sr_ratios=(2, 1),
                                      mlp_ratios=(2.0, 2.0), num_classes=NUM_CLASSES)


def _crossvit() -> nn.Module:
    from timm.models.crossvit import CrossVit

    return CrossVit(img_size=IMAGE, img_scale=(1.0, 1.0), patch_size=(8, 16), embed_dim=(16, 32), depth=((1, 1, 0),),
                    num_heads=(2, 2), mlp_ratio=(2.0, 2.0, 1.0), num_classes=NUM_CLASSES)


def _convit() -> nn.Module:
    from timm.models.convit import ConVit

    return ConVit(**_VIT, local_up_to_layer=1)


def _swin() -> nn.Module:
    from timm.models.swin_transformer import SwinTransformer

    return SwinTransformer(img_size=IMAGE, patch_size=4, embed_dim=16, depths=(2,), num_heads=(2,), window_size=4,
                           num_classes=NUM_CLASSES)


def _maxvit() -> nn.Module:
    from timm.models.maxxvit import MaxxVit, MaxxVitCfg, MaxxVitTransformerCfg

    cfg = MaxxVitCfg(embed_dim=(16, 32), depths=(1, 1), block_type=("M", "M"), stem_width=(8, 16),
                     transformer_cfg=MaxxVitTransformerCfg(dim_head=8, window_size=(2, 2)))
    return MaxxVit(cfg, img_size=IMAGE, num_classes=NUM_CLASSES)


def _xcit() -> nn.Module:
    from timm.models.xcit import Xcit

    return Xcit(**{**_VIT, "embed_dim": 48}, cls_attn_layers=1)


def _levit() -> nn.Module:
    from timm.models.levit import Levit

    return Levit(img_size=IMAGE, embed_dim=(16, 32), key_dim=8, depth=(1, 1), num_heads=(2, 2), num_classes=NUM_CLASSES)


def _efficientformer() -> nn.Module:
    from timm.models.efficientformer import EfficientFormer

    return EfficientFormer(depths=(1, 1, 1, 1), embed_dims=(8, 16, 16, 32), num_vit=1, num_classes=NUM_CLASSES)


def _mvitv2() -> nn.Module:
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    return MultiScaleVit(MultiScaleVitCfg(depths=(1, 1), embed_dim=16, num_heads=(2, 2), use_cls_token=True),
                         img_size=(IMAGE, IMAGE), num_classes=NUM_CLASSES)


def _coat() -> nn.Module:
    from timm.models.coat import CoaT

    # 8 heads: CoaT's convolutional position encoding splits the heads 2 + 3 + 3 over its kernel sizes
    return CoaT(img_size=IMAGE, patch_size=4, embed_dims=(16, 16, 16, 16), serial_depths=(1, 1, 1, 1), num_heads=8,
                mlp_ratios=(2, 2, 2, 2), num_classes=NUM_CLASSES)


def _tiny_vit() -> nn.Module:
    from timm.models.tiny_vit import TinyVit

    return TinyVit(embed_dims=(16, 32), depths=(1, 1), num_heads=(2, 2), window_sizes=(4, 4), num_classes=NUM_CLASSES)


_INLINE = ("so the weights never leave forward() through a module a hook could read; only an FX trace of the "
           "softmax node (AttentionExtract(method='fx')) sees them")

CASES: list[Case] = [
    _recorded("vit", _vit, note="class token + 16 patches"),
    _recorded("vit_registers", lambda: _vit(reg_tokens=4, class_token=False, global_pool="avg"),
              note="4 register tokens + 16 patches, no class token"),
    _recorded("deit", _deit, note="timm.create_model('deit_tiny_patch16_224') shrunk: the ViT architecture"),
    _recorded("deit_distilled", _deit_distilled, note="two prefix tokens (class and distillation) + 16 patches"),
    _recorded("beit", _beit, note="relative position bias added before the softmax"),
    _recorded("eva", _eva, note="rotary position embedding on q and k"),
    _recorded("naflexvit", _naflexvit, note="image tensor input (not the NaFlex patch dictionary); 2 register tokens"),
    _refused("cait", _cait,
             "talking-heads attention mixes heads after the softmax, so its rows are not distributions over keys; "
             "its class-attention layers can be recorded on their own with layers='blocks_token_only.*'"),
    _recorded("pit", _pit, note="pooling between stages: 49 + 1 tokens, then 16 + 1"),
    _recorded("twins", _twins_pcpvt, note="Twins-PCPVT global sub-sampled attention: keys sub-sampled (64 queries, 16 keys)"),
    _recorded("twins_svt", _twins_svt, recorded="windows",
              note="Twins-SVT: locally grouped attention makes (batch, windows, heads, 16, 16), folded to "
                   "(batch·windows, heads, 16, 16); then global sub-sampled attention (64 queries, 16 keys)"),
    _recorded("pvt_v2", _pvt_v2, note="spatial-reduction attention: keys sub-sampled in the first stage (64 queries, 16 keys)"),
    _recorded("crossvit", _crossvit, ["*.blocks.*.attn.attn_drop"], cross=["*.fusion.*.attn.attn_drop"],
              recorded="self + cross",
              note="two branches (16 + 1 and 4 + 1 tokens) with self-attention each; cross = fusion: one branch's "
                   "class token (1 query) over itself + the other branch's patches"),
    _recorded("convit", _convit,
              note="gated positional self-attention (mix of content and positional softmax, renormalised) on 16 "
                   "patches, then plain self-attention with the class token (17 tokens)"),
    _recorded("swin", _swin, recorded="windows",
              note="window attention: (batch·4 windows, heads, 16, 16); the second block's windows are shifted and masked"),
    _refused("maxvit", _maxvit,
             "block and grid (dilated) partition attention fold the partitions into the batch axis "
             "((batch·partitions, heads, 4, 4)); capture keeps the batch axis the inputs and does not unfold grid partitions"),
    _refused("xcit", _xcit,
             "cross-covariance attention over channels, not token × token: XCA's softmax runs over the channels of "
             "each head ((batch, heads, 24, 24) for 24 channels per head), only its class-attention layers attend "
             "over tokens"),
    _refused("levit", _levit,
             "LeViT's Attention and AttentionDownsample add learned attention biases to q·kᵀ and call .softmax() "
             "inline, with no attn_drop module after it and no fused_attn switch, " + _INLINE),
    _refused("efficientformer", _efficientformer,
             "LeViT-style attention in the last stage (q·kᵀ + learned attention biases, .softmax() inline), with no "
             "attn_drop module and no fused_attn switch, " + _INLINE, image=224),
    _refused("mvitv2", _mvitv2,
             "pooling attention (pooled q, k, v + decomposed relative positions) calls .softmax() inline, with no "
             "attn_drop module and no fused_attn switch, " + _INLINE),
    _refused("coat", _coat,
             "factorized attention: softmax over the tokens of each key channel, then q·(softmax(K)ᵀ·V); no token × "
             "token matrix is ever formed (its attn_drop module is never called)"),
    _refused("tiny_vit", _tiny_vit,
             "TinyViT's windowed attention has a fused_attn switch, but unfused it adds attention biases and calls "
             ".softmax() inline with no attn_drop module after it, " + _INLINE),
]
