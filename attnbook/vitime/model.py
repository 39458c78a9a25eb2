"""A ViTime-style masked-autoencoder ViT, state-dict-identical to the official ``MAE`` model.

The official model (``IkeYang/ViTime``, class ``MAE`` wrapping a ``MaskedAutoencoderViT``) turns
a binary "visual time series" image into one distribution over value bins per time column::

    image (B, C, W, h) ──transpose──▶ (B, C, h, W) ──PatchEmbed──▶ N tokens (raster order:
    token r·grid_w + c is value-row r, time-column c) ──+pos──▶ [CLS] + encoder ``blocks``
    ──▶ ``norm`` ──▶ ``decoder_embed`` ──+decoder_pos──▶ ``decoder_blocks`` ──▶ ``decoder_norm``
    ──▶ ``decoder_pred`` (ph·pw logits per patch) ──unpatchify/transpose──▶ (B, C, W, h)
    ──softmax over the h value bins──▶ forecast image

Every learned weight lives under the attribute ``model`` with the official names, so the state
dict keys are ``model.patch_embed.proj.weight``, ``model.cls_token``, ``model.pos_embed``,
``model.blocks.{i}.attn.qkv.weight``, …, ``model.decoder_pred.bias`` and an official
checkpoint loads strictly (see :mod:`attnbook.vitime.weights`). The encoder and decoder blocks
are timm ``Block``\\ s, so :func:`attnbook.capture.capture` records their attention.

**Token order.** The official encoder shuffles its tokens at random on every forward (MAE's
``random_masking`` at mask ratio 0). The output does not depend on the order — positions are
added before the shuffle and the decoder restores raster order — but encoder attention maps come
out permuted. Here the order is ``"raster"`` by default; ``token_order="shuffle"`` reproduces the
official behaviour from a seeded generator, and :attr:`ViTime.last_permutation` plus
:func:`unshuffle_attention` put captured encoder maps back into raster order before analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import checks
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps

if TYPE_CHECKING:
    from .mapping import MappingConfig

__all__ = [
    "ViTimeConfig",
    "PRESETS",
    "preset",
    "ViTime",
    "MaskedAutoencoderViT",
    "TOKEN_ORDERS",
    "sincos_pos_embed",
    "unshuffle_attention",
    "inverse_permutation",
]

TOKEN_ORDERS = ("raster", "shuffle")
OUTPUTS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class ViTimeConfig:
    """Shape of a ViTime-style model (the CPU "strip" preset by default).

    The image is ``h`` value bins tall and ``width = history_len + future_len`` canvas columns wide
    (official ``args``: ``h``, ``size[0]·expandData``, ``size[2]·expandData``). Patches are
    ``patch = (ph, pw)`` (rows × columns), giving ``grid_h = h/ph`` by ``grid_w = width/pw``
    tokens plus a CLS token. Encoder and decoder sizes are explicit (the official code derives
    them from ``modelSize``: E = int(1024·ms), depth = int(12·ms), heads = int(16·ms), decoder
    E/2, int(depth/2), same heads). ``max_scal`` (official ``maxScal``) is the clipping range of
    the normalised series, carried for the image mapping; ``rope`` selects the official
    interleaved cos/sin position table (added, not rotary); ``output`` is the per-column
    ``"softmax"`` over value bins (official default) or a per-pixel ``"sigmoid"``
    (official ``lossType == 'MSE'``); ``future_fill`` is what the input canvas's future columns
    hold, carried for the image mapping like ``max_scal`` (``"blank"``, the release, or
    ``"seasonal average"``: :class:`attnbook.vitime.mapping.MappingConfig`).
    """

    h: int = 64
    history_len: int = 512
    future_len: int = 720
    patch: tuple[int, int] = (64, 16)
    in_chans: int = 1
    embed_dim: int = 128
    depth: int = 4
    num_heads: int = 4
    decoder_embed_dim: int = 64
    decoder_depth: int = 2
    decoder_num_heads: int = 4
    mlp_ratio: float = 4.0
    max_scal: float = 3.5
    rope: bool = False
    output: str = "softmax"
    future_fill: str = "blank"

    def __post_init__(self) -> None:
        patch = tuple(self.patch) if isinstance(self.patch, list) else self.patch
        pair = "a pair (ph, pw) of positive integers"
        if not isinstance(patch, tuple) or len(patch) != 2:
            raise bad_argument(InvalidInputError, "patch", pair, patch)
        try:
            patch = tuple(checks.positive_int("patch", p) for p in patch)
        except InvalidInputError:
            raise bad_argument(InvalidInputError, "patch", pair, patch) from None
        object.__setattr__(self, "patch", patch)
        for name in ("h", "history_len", "future_len", "in_chans", "embed_dim", "depth", "num_heads", "decoder_embed_dim", "decoder_num_heads"):
            checks.positive_int(name, getattr(self, name))
        checks.integer("decoder_depth", self.decoder_depth, minimum=0)
        ph, pw = patch
        if self.h % ph:
            raise bad_argument(InvalidInputError, "patch", f"a patch height dividing h={self.h}", f"ph={ph} (h % ph = {self.h % ph})", raw=True)
        if self.width % pw:
            raise bad_argument(
                InvalidInputError, "patch", f"a patch width dividing the canvas width history_len+future_len={self.width}", f"pw={pw} (width % pw = {self.width % pw})", raw=True
            )
        for dim, heads in (("embed_dim", "num_heads"), ("decoder_embed_dim", "decoder_num_heads")):
            d, n = getattr(self, dim), getattr(self, heads)
            if d % n:
                raise bad_argument(InvalidInputError, heads, f"a number of heads dividing {dim}={d}", n)
            if d % 4:
                raise bad_argument(InvalidInputError, dim, "a multiple of 4 (2-D sine-cosine positions)", d)
        checks.positive("mlp_ratio", self.mlp_ratio)
        if int(self.embed_dim * self.mlp_ratio) < 1 or int(self.decoder_embed_dim * self.mlp_ratio) < 1:
            raise bad_argument(InvalidInputError, "mlp_ratio", "a ratio giving an MLP width of at least 1", self.mlp_ratio)
        checks.positive("max_scal", self.max_scal)
        if not isinstance(self.rope, bool):
            raise bad_argument(InvalidInputError, "rope", "a bool", self.rope)
        if self.output not in OUTPUTS:
            raise bad_argument(InvalidInputError, "output", f"one of {list(OUTPUTS)}", self.output)
        from .mapping import FUTURE_FILLS

        if self.future_fill not in FUTURE_FILLS:
            raise bad_argument(InvalidInputError, "future_fill", f"one of {list(FUTURE_FILLS)}", self.future_fill)

    # -- derived sizes -----------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Canvas width W in columns (history_len + future_len)."""
        return self.history_len + self.future_len

    @property
    def image_size(self) -> tuple[int, int]:
        """``(h, W)``: the image as the ViT sees it (rows = value bins, columns = time)."""
        return (self.h, self.width)

    @property
    def bins(self) -> int:
        """``h`` under the name :class:`attnbook.vitime.mapping.MappingConfig` uses."""
        return self.h

    def mapping_kwargs(self) -> dict[str, Any]:
        """The canvas fields a ``MappingConfig`` shares with this config
        (``MappingConfig(**config.mapping_kwargs())`` gives the matching series ↔ image mapping)."""
        return {"history_len": self.history_len, "future_len": self.future_len, "bins": self.h, "patch": self.patch, "max_scal": float(self.max_scal),
                "future_fill": self.future_fill}

    def mapping(self, mapping: Any = None) -> "MappingConfig":
        """The series ↔ image mapping of this canvas: ``MappingConfig(**mapping_kwargs())`` when
        ``mapping`` is None, else ``mapping`` itself after checking that its canvas fields match."""
        from .mapping import MappingConfig

        if mapping is None:
            return MappingConfig(**self.mapping_kwargs())
        if not isinstance(mapping, MappingConfig):
            raise bad_argument(InvalidInputError, "mapping", "a MappingConfig or None", type(mapping).__name__, raw=True)
        shared = self.mapping_kwargs()
        mine = {k: getattr(mapping, k) for k in shared}
        if mine != shared:
            raise bad_argument(InvalidInputError, "mapping", f"a mapping matching the model's canvas {shared}", mine, raw=True)
        return mapping

    @property
    def grid_h(self) -> int:
        return self.h // self.patch[0]

    @property
    def grid_w(self) -> int:
        return self.width // self.patch[1]

    @property
    def n_patches(self) -> int:
        """N = grid_h · grid_w (tokens without CLS)."""
        return self.grid_h * self.grid_w

    @property
    def n_tokens(self) -> int:
        """N + 1: the length of every attention row (CLS first)."""
        return self.n_patches + 1

    # -- conversion ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["patch"] = list(self.patch)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "ViTimeConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise bad_argument(InvalidInputError, "config", f"only the fields {sorted(known)}", f"unknown fields {unknown}", raw=True)
        data = dict(data)
        if "patch" in data and isinstance(data["patch"], list):
            data["patch"] = tuple(data["patch"])
        return cls(**data)

    def replace(self, **changes: Any) -> "ViTimeConfig":
        return replace(self, **changes)


# Numbers from the design note (§1.2, §5.1 table, §5.4). The official h, patch and modelSize are
# not in the public code: (h=128, patch (4, 32), modelSize 1) is the note's reading, unverified.
PRESETS: dict[str, ViTimeConfig] = {
    # 1× canvas (512 + 720 columns), one patch row covering all 64 bins: 77 pure time-slice tokens.
    "strip": ViTimeConfig(h=64, history_len=512, future_len=720, patch=(64, 16), embed_dim=128, depth=4, num_heads=4,
                          decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4, max_scal=3.5),
    # Same canvas, 4 patch rows: 4 × 77 = 308 tokens (exercises height-averaging).
    "grid4": ViTimeConfig(h=64, history_len=512, future_len=720, patch=(16, 16), embed_dim=128, depth=4, num_heads=4,
                          decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4, max_scal=3.5),
    # Official 2× canvas (1024 + 1440 columns), 8 × 77 = 616 tokens.
    "grid8": ViTimeConfig(h=64, history_len=1024, future_len=1440, patch=(8, 32), embed_dim=128, depth=4, num_heads=4,
                          decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4, max_scal=3.5),
    # Official 2× canvas, 32 bins, 4 × 77 = 308 tokens, narrower.
    "grid4-small": ViTimeConfig(h=32, history_len=1024, future_len=1440, patch=(8, 32), embed_dim=96, depth=3, num_heads=4,
                                decoder_embed_dim=48, decoder_depth=1, decoder_num_heads=4, max_scal=3.5),
    # modelSize 1: 1024/12/16, decoder 512/6/16, 2464 × 128 canvas, 32 × 77 = 2464 tokens.
    "official": ViTimeConfig(h=128, history_len=1024, future_len=1440, patch=(4, 32), embed_dim=1024, depth=12, num_heads=16,
                             decoder_embed_dim=512, decoder_depth=6, decoder_num_heads=16, max_scal=3.5),
}


def preset(name: str, **changes: Any) -> ViTimeConfig:
    """The named preset (``"strip"``, ``"grid4"``, ``"grid8"``, ``"grid4-small"``, ``"official"``;
    a ``"mini-"`` prefix is accepted, and ``"grid"`` means ``"grid4"`` as in the mapping presets),
    with optional field changes."""
    key = name[5:] if isinstance(name, str) and name.startswith("mini-") else name
    key = "grid4" if key == "grid" else key
    if key not in PRESETS:
        raise bad_argument(InvalidInputError, "name", f"one of {sorted(PRESETS)}", name)
    return PRESETS[key].replace(**changes) if changes else PRESETS[key]


# -- positions -------------------------------------------------------------------------------------

def _sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = pos.reshape(-1).to(torch.float64)[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def _rope_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    freqs = 10000 ** (-2 * torch.arange(dim // 2, dtype=torch.float64) / dim)
    theta = pos.reshape(-1).to(torch.float64)[:, None] * freqs[None]
    emb = torch.zeros(theta.shape[0], dim, dtype=torch.float64)
    emb[:, 0::2] = torch.cos(theta)
    emb[:, 1::2] = torch.sin(theta)
    return emb


def sincos_pos_embed(dim: int, grid_h: int, grid_w: int, *, cls_token: bool = True, rope: bool = False) -> torch.Tensor:
    """The MAE 2-D sine-cosine table ``(grid_h·grid_w [+1], dim)`` in raster order, float32.

    Default: the first half of the channels encodes the column (time) index, the second half the
    row (value) index; each half is ``[sin(p·ω_k), cos(p·ω_k)]`` with ω_k = 10000^(−k/(dim/4)).
    ``rope``: the official interleaved cos/sin variant (row half first). The CLS slot is zero.
    """
    rows = torch.arange(grid_h, dtype=torch.float32)[:, None].expand(grid_h, grid_w)
    cols = torch.arange(grid_w, dtype=torch.float32)[None, :].expand(grid_h, grid_w)
    if rope:
        emb = torch.cat([_rope_1d(dim // 2, rows), _rope_1d(dim // 2, cols)], dim=1)
    else:
        emb = torch.cat([_sincos_1d(dim // 2, cols), _sincos_1d(dim // 2, rows)], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()


# -- the network ----------------------------------------------------------------------------------

class MaskedAutoencoderViT(nn.Module):
    """The official ``MaskedAutoencoderViT`` at mask ratio 0: ``(B, C, W, h)`` image → logits.

    Attribute names (and so state-dict keys) follow the official code exactly.
    """

    def __init__(self, config: ViTimeConfig, token_order: str = "raster", seed: int | None = None) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block, PatchEmbed

        c = config
        self.config = c
        self.patch_embed = PatchEmbed(c.image_size, c.patch, c.in_chans, c.embed_dim)
        self.num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.n_tokens, c.embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList(
            [Block(c.embed_dim, c.num_heads, c.mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm) for _ in range(c.depth)]
        )
        self.norm = nn.LayerNorm(c.embed_dim)
        self.decoder_embed = nn.Linear(c.embed_dim, c.decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, c.n_tokens, c.decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            [
                Block(c.decoder_embed_dim, c.decoder_num_heads, c.mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm)
                for _ in range(c.decoder_depth)
            ]
        )
        self.decoder_norm = nn.LayerNorm(c.decoder_embed_dim)
        self.decoder_pred = nn.Linear(c.decoder_embed_dim, c.patch[0] * c.patch[1] * c.in_chans, bias=True)
        self.last_ids_shuffle: torch.Tensor | None = None
        self.set_token_order(token_order, seed)
        self.initialize_weights()

    # -- initialisation (as the MAE reference code) --------------------------------------------
    def initialize_weights(self) -> None:
        c = self.config
        self.pos_embed.data.copy_(sincos_pos_embed(c.embed_dim, c.grid_h, c.grid_w, rope=c.rope).unsqueeze(0))
        self.decoder_pos_embed.data.copy_(sincos_pos_embed(c.decoder_embed_dim, c.grid_h, c.grid_w, rope=c.rope).unsqueeze(0))
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    # -- token order ------------------------------------------------------------------------------
    def set_token_order(self, token_order: str = "raster", seed: int | None = None) -> None:
        """``"raster"`` (default) or ``"shuffle"`` (official: a fresh random permutation per
        sample and forward, drawn from a generator seeded with ``seed``; None: torch's global RNG)."""
        if token_order not in TOKEN_ORDERS:
            raise bad_argument(InvalidInputError, "token_order", f"one of {list(TOKEN_ORDERS)}", token_order)
        if seed is not None:
            seed = checks.integer("seed", seed)
        self.token_order = token_order
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def _permutation(self, batch: int, device: torch.device) -> torch.Tensor | None:
        if self.token_order == "raster":
            return None
        noise = torch.rand(batch, self.num_patches, generator=self.generator)  # CPU, so the seed is device-independent
        return torch.argsort(noise, dim=1).to(device)

    # -- patches ---------------------------------------------------------------------------------
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, c, h, W)`` → ``(B, N, ph·pw·c)`` (per patch: pixel row, pixel column, channel)."""
        c = self.config
        ph, pw = c.patch
        x = imgs.reshape(imgs.shape[0], imgs.shape[1], c.grid_h, ph, c.grid_w, pw)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(imgs.shape[0], c.n_patches, ph * pw * imgs.shape[1])

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`patchify`: ``(B, N, ph·pw·c)`` → ``(B, c, h, W)``."""
        c = self.config
        ph, pw = c.patch
        ch = x.shape[2] // (ph * pw)
        x = x.reshape(x.shape[0], c.grid_h, c.grid_w, ph, pw, ch)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], ch, c.grid_h * ph, c.grid_w * pw)

    # -- forward ---------------------------------------------------------------------------------
    def forward_encoder(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, c, h, W)`` → (encoder output ``(B, N+1, E)`` in the encoder's token order,
        ``ids_shuffle`` ``(B, N)`` or None in raster order)."""
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        ids_shuffle = self._permutation(x.shape[0], x.device)
        if ids_shuffle is not None:
            x = torch.gather(x, 1, ids_shuffle.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), ids_shuffle

    def forward_decoder(self, x: torch.Tensor, ids_shuffle: torch.Tensor | None) -> torch.Tensor:
        """Encoder output → per-patch logits ``(B, N, ph·pw·c)`` in raster order (CLS dropped)."""
        x = self.decoder_embed(x)
        if ids_shuffle is not None:  # un-shuffle (no mask tokens at mask ratio 0)
            ids_restore = torch.argsort(ids_shuffle, dim=1)
            rest = torch.gather(x[:, 1:, :], 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))
            x = torch.cat([x[:, :1, :], rest], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:, :]

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, c, W, h)`` image → ``(B, c, W, h)`` logits (as the official ``forward``)."""
        x = imgs.transpose(2, 3)
        latent, ids_shuffle = self.forward_encoder(x)
        self.last_ids_shuffle = None if ids_shuffle is None else ids_shuffle.detach()
        pred = self.forward_decoder(latent, ids_shuffle)
        return self.unpatchify(pred).transpose(2, 3)


class ViTime(nn.Module):
    """The official ``MAE`` wrapper: ``(B, C, W, h)`` images → ``(B, C, W, h)`` per-column
    distributions over the ``h`` value bins (``softmax(logits / temperature)`` over the last
    axis; a per-pixel sigmoid for ``config.output == "sigmoid"``).

    ``W`` (time columns) and ``h`` (value bins) must equal ``config.width`` and ``config.h``.
    With ``in_chans == 1`` (official) each channel is run separately (folded into the batch);
    otherwise ``C`` must equal ``in_chans``.
    """

    def __init__(self, config: ViTimeConfig | None = None, *, token_order: str = "raster", seed: int | None = None) -> None:
        super().__init__()
        config = PRESETS["strip"] if config is None else config
        if not isinstance(config, ViTimeConfig):
            raise bad_argument(InvalidInputError, "config", "a ViTimeConfig", type(config).__name__, raw=True)
        self.config = config
        self.model = MaskedAutoencoderViT(config, token_order, seed)
        self.EMD = nn.Softmax(dim=-1)
        self.args: dict | None = None  # the checkpoint's args, when loaded from one

    # -- token order ------------------------------------------------------------------------------
    @property
    def token_order(self) -> str:
        return self.model.token_order

    def set_token_order(self, token_order: str = "raster", seed: int | None = None) -> "ViTime":
        """Switch between ``"raster"`` and the official ``"shuffle"`` (seeded); returns self."""
        self.model.set_token_order(token_order, seed)
        return self

    @property
    def last_permutation(self) -> torch.Tensor | None:
        """``ids_shuffle`` of the last forward, ``(B·C, N)``: encoder position p (after CLS) held
        raster token ``ids_shuffle[b, p]``. None after a raster-order forward (or before any)."""
        return self.model.last_ids_shuffle

    # -- forward ---------------------------------------------------------------------------------
    def check_input(self, x: Any) -> None:
        """Raise ``InvalidInputError`` unless ``x`` is a finite float ``(B, C, W, h)`` image batch."""
        c = self.config
        if not isinstance(x, torch.Tensor):
            raise bad_argument(InvalidInputError, "x", "a torch.Tensor", type(x).__name__, raw=True)
        want = f"(batch, channels, W={c.width}, h={c.h})"
        if x.dim() != 4:
            raise bad_argument(InvalidInputError, "x", f"an image batch of shape {want}", tuple(x.shape), raw=True)
        if tuple(x.shape[2:]) != (c.width, c.h):
            raise bad_argument(InvalidInputError, "x", f"an image batch of shape {want} (time columns, value bins)", tuple(x.shape), raw=True)
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise bad_argument(InvalidInputError, "x", "at least one sample and one channel", tuple(x.shape), raw=True)
        if c.in_chans != 1 and x.shape[1] != c.in_chans:
            raise bad_argument(InvalidInputError, "x", f"{c.in_chans} channels", f"{x.shape[1]} channels", raw=True)
        if not x.is_floating_point():
            raise bad_argument(InvalidInputError, "x", "a floating-point tensor", x.dtype, raw=True)
        if not torch.isfinite(x).all():
            raise bad_argument(InvalidInputError, "x", "finite values", f"{int((~torch.isfinite(x)).sum())} non-finite entries", raw=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation output ``(B, C, W, h)`` (for losses such as cross-entropy)."""
        self.check_input(x)
        b, ch, w, h = x.shape
        if self.config.in_chans == 1:
            return self.model(x.reshape(b * ch, 1, w, h)).reshape(b, ch, w, h)
        return self.model(x)

    def forward(self, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        checks.positive("temperature", temperature)
        z = self.logits(x)
        if self.config.output == "sigmoid":
            return torch.sigmoid(z)
        return self.EMD(z / temperature)

    def n_parameters(self, trainable: bool = True) -> int:
        """Number of trainable (or, with ``trainable=False``, frozen) parameter values."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad == trainable)


# -- un-permuting shuffled encoder attention --------------------------------------------------------

def inverse_permutation(ids_shuffle: torch.Tensor) -> torch.Tensor:
    """``ids_restore``: raster token i sits at shuffled position ``ids_restore[..., i]``."""
    return torch.argsort(ids_shuffle, dim=-1)


def _check_permutation(ids: Any, n: int, batch: int) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor):
        raise bad_argument(InvalidInputError, "ids_shuffle", "a torch.Tensor of token indices", type(ids).__name__, raw=True)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise bad_argument(InvalidInputError, "ids_shuffle", "an integer tensor", ids.dtype, raw=True)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0).expand(batch, -1)
    if ids.dim() != 2 or ids.shape[1] != n or ids.shape[0] != batch:
        raise bad_argument(InvalidInputError, "ids_shuffle", f"shape ({batch}, {n}) or ({n},) for maps of {n}+1 tokens and batch {batch}", tuple(ids.shape), raw=True)
    ids = ids.to("cpu", torch.long)
    if not torch.equal(torch.sort(ids, dim=1).values, torch.arange(n).expand(batch, n)):
        raise bad_argument(InvalidInputError, "ids_shuffle", f"a permutation of 0..{n - 1} per sample", "repeated or out-of-range indices", raw=True)
    return ids


def _unshuffle_tensor(w: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``w`` (..., B, H, N+1, N+1) with ids (B, N) → raster order."""
    b = ids.shape[0]
    index = torch.cat([torch.zeros(b, 1, dtype=torch.long), inverse_permutation(ids) + 1], dim=1).to(w.device)  # (B, N+1)
    lead = w.shape[:-4]
    view = (1,) * len(lead) + (b, 1)
    q_index = index.view(*view, -1, 1).expand(w.shape)
    w = torch.gather(w, -2, q_index)
    k_index = index.view(*view, 1, -1).expand(w.shape)
    return torch.gather(w, -1, k_index)


def unshuffle_attention(
    attention: AttentionMaps | torch.Tensor,
    ids_shuffle: torch.Tensor,
    *,
    layers: Sequence[int | str] | int | str | None = None,
) -> AttentionMaps | torch.Tensor:
    """Put attention captured from a shuffled encoder back into raster token order.

    ``ids_shuffle`` is :attr:`ViTime.last_permutation` of the forward that produced the maps,
    ``(batch, N)`` (or ``(N,)`` for every sample); maps have ``N + 1`` tokens with CLS first,
    which stays first. Output entry ``[i+1, j+1]`` is the input entry at the shuffled positions
    of raster tokens ``i`` and ``j``.

    ``attention``: a tensor ``(..., batch, heads, N+1, N+1)`` (every map un-permuted), or
    :class:`AttentionMaps`; for those, ``layers`` (indices or names) picks the layers to
    un-permute, by default every layer whose name does not contain ``"decoder"`` (decoder blocks
    already run in raster order). Labels and mask are permuted with their layers' tokens
    only when every layer is un-permuted (they are shared by all layers).
    """
    if isinstance(attention, AttentionMaps):
        w = attention.weights
        L, B, _, Q, K = w.shape
    elif isinstance(attention, torch.Tensor):
        w = attention
        if w.dim() < 4:
            raise bad_argument(InvalidInputError, "attention", "weights of shape (..., batch, heads, N+1, N+1)", tuple(w.shape), raw=True)
        B, Q, K = w.shape[-4], w.shape[-2], w.shape[-1]
    else:
        raise bad_argument(InvalidInputError, "attention", "AttentionMaps or a torch.Tensor", type(attention).__name__, raw=True)
    if Q != K or Q < 2:
        raise bad_argument(InvalidInputError, "attention", "square maps over N+1 tokens (CLS first)", f"{Q} queries × {K} keys", raw=True)
    ids = _check_permutation(ids_shuffle, Q - 1, B)
    if isinstance(attention, torch.Tensor):
        return _unshuffle_tensor(w, ids)

    if layers is None:
        chosen = [i for i, name in enumerate(attention.layer_names) if "decoder" not in name]
    else:
        wanted = [layers] if isinstance(layers, (int, str)) else list(layers)
        chosen = sorted({attention.layer_index(x) for x in wanted})
    out = w.clone()
    if chosen:
        out[chosen] = _unshuffle_tensor(w[chosen], ids)
    all_layers = len(chosen) == L
    index = torch.cat([torch.zeros(B, 1, dtype=torch.long), inverse_permutation(ids) + 1], dim=1)

    def relabel(labels):
        if labels is None or not all_layers:
            return labels
        return [[row[int(i)] for i in index[b]] for b, row in enumerate(labels)]

    mask = attention.mask
    if mask is not None and all_layers:
        idx = index.to(mask.device)
        mask = torch.gather(mask, 1, idx[:, :, None].expand(mask.shape))
        mask = torch.gather(mask, 2, idx[:, None, :].expand(mask.shape))
    meta = dict(attention.meta)
    meta["token_order"] = "raster (un-shuffled)"
    meta["unshuffled_layers"] = [attention.layer_names[i] for i in chosen]
    return AttentionMaps(out, attention.layer_names, relabel(attention.query_labels), relabel(attention.key_labels), mask, meta)
