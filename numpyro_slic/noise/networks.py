"""Time-conditioned, fully convolutional U-Net for score and energy models (NCSN++ in spirit).

One example at a time: ``UNet(x, log_sigma)`` maps an image ``(H, W)`` and a scalar noise level to
an image ``(H, W)``; callers ``jax.vmap`` over batches. Conditioning is on log sigma (the VE-form
width in trained units), so a net does not depend on how t was mapped to sigma during training.

Architecture: Gaussian Fourier features of log sigma -> MLP -> per-block channel bias; a 3 x 3 input
conv; ``len(channel_mults)`` resolution levels, each with ``num_res_blocks`` residual blocks
(norm, SiLU, conv; dropout-free), 2 x 2 average-pool downsampling and nearest-neighbour
upsampling between levels, and U-Net skip connections (concatenation) from every down block to its
up block; the output conv and each block's second conv are zero-initialised, so a fresh net
outputs exactly 0 and every block starts as the identity.
Activations are channels last, (H, W, C); the convolutions keep their parameters in
``eqx.nn.Conv2d`` modules but are evaluated by ``_apply_conv`` (why: its docstring).

Normalisation (``norm``): "pixel" (default) normalises over the channels at each pixel (ConvNeXt's
channel LayerNorm), not over the whole image, so the net stays local: its receptive field is
finite, it is translation-equivariant away from the edges, and a net trained on 64 x 64 sees the
same kind of input on 256 x 256. "group" is NCSN++'s GroupNorm (statistics over the whole image:
every output pixel then depends a little on every input pixel, including a bright unmodelled
source far away). "none" drops normalisation.

Sizes: with L = len(channel_mults) there are L - 1 downsamplings, so H and W must be multiples of
2^(L - 1) (``UNetConfig.multiple``). Other sizes are padded up to the next multiple (``pad_mode``:
"reflect" or "zeros"), evaluated, and cropped back: a net trained on 64 x 64 evaluates 128 x 128 or
256 x 256 as is, and 100 x 100 via 104 x 104. The padded margin changes only the pixels within the
receptive field of the edge, which are edge pixels anyway.

``padding`` sets the convolutions' own padding: "zeros" (default; training crops are not periodic,
and the net learns what an edge looks like) or "circular" (exact translation equivariance by shifts
that are multiples of 2^(L - 1) on periodic fields).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

__all__ = ["UNetConfig", "UNet"]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a ``UNet``; JSON-serialisable, so model bundles can rebuild the net.

    Attributes:
        width: channels at full resolution.
        channel_mults: channel multiplier per resolution level; its length L sets the depth
            (L - 1 downsamplings).
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        embed_dim: size of the noise-level embedding.
        fourier_scale: standard deviation of the random Fourier frequencies applied to log sigma.
        groups: GroupNorm groups for ``norm="group"`` (must divide every level's channel count).
        norm: "pixel", "group" or "none" (see the module docstring).
        padding: convolution padding, "zeros" or "circular".
        pad_mode: how inputs whose size is not a multiple of 2^(L - 1) are padded, "reflect" or
            "zeros".
    """

    width: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    embed_dim: int = 64
    fourier_scale: float = 4.0
    groups: int = 8
    norm: str = "pixel"
    padding: str = "zeros"
    pad_mode: str = "reflect"

    def __post_init__(self):
        object.__setattr__(self, "channel_mults", tuple(int(m) for m in self.channel_mults))
        if self.width < 1 or not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(
                f"UNetConfig: width and channel_mults must be positive, got {self.width}, "
                f"{self.channel_mults}."
            )
        if self.num_res_blocks < 1 or self.embed_dim < 2 or self.embed_dim % 2:
            raise ValueError("UNetConfig: num_res_blocks >= 1 and an even embed_dim >= 2 are required.")
        for m in self.channel_mults:
            if (self.width * m) % self.groups:
                raise ValueError(
                    f"UNetConfig: groups={self.groups} must divide every level's channels "
                    f"(width * mult = {self.width * m})."
                )
        if self.norm not in ("pixel", "group", "none"):
            raise ValueError(f"UNetConfig: norm must be 'pixel', 'group' or 'none', got {self.norm!r}.")
        if self.padding not in ("zeros", "circular"):
            raise ValueError(f"UNetConfig: padding must be 'zeros' or 'circular', got {self.padding!r}.")
        if self.pad_mode not in ("reflect", "zeros"):
            raise ValueError(f"UNetConfig: pad_mode must be 'reflect' or 'zeros', got {self.pad_mode!r}.")

    @property
    def multiple(self) -> int:
        """Image sizes the net evaluates without padding are multiples of this."""
        return 2 ** (len(self.channel_mults) - 1)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(
                f"UNetConfig: unknown fields {sorted(unknown)}; the bundle was written by a newer "
                "numpyro-slic, upgrade the package."
            )
        return cls(**{k: (tuple(v) if k == "channel_mults" else v) for k, v in d.items()})


def _conv(cin, cout, key, padding, kernel=3):
    return eqx.nn.Conv2d(cin, cout, kernel, padding=kernel // 2, padding_mode=padding.upper(), key=key)


def _apply_conv(conv: eqx.nn.Conv2d, x: Float[Array, "H W Ci"]) -> Float[Array, "H W Co"]:
    """A stride-1 "same" convolution, channels last, with an ``eqx.nn.Conv2d``'s parameters.

    The parameters stay in ``eqx.nn.Conv2d`` (weight (Co, Ci, kh, kw), bias (Co, 1, 1)), so saved
    bundles load unchanged; only the evaluation differs. When JAX's default backend is the CPU
    (checked when the net is traced) it is an explicit im2col, the kh * kw shifted views side by
    side times the weight matrix. Why: inside ``lax.while_loop`` bodies, which is where NUTS, MALA
    and the reverse-SDE samplers call the network, XLA:CPU runs every convolution whose kernel is
    not in the canonical HWIO layout, including the input gradient of any convolution, 4 to 17
    times slower than outside a loop (jax-ml/jax#12868), while slices, concatenations and matrix
    products have no such case: the demo's SLIC potential costs 30 ms per value and gradient inside
    a loop this way, 82 ms with NHWC convolutions (benchmarks/conv_in_loop.py). Elsewhere it is
    ``lax.conv_general_dilated`` in NHWC / HWIO.
    """
    co, ci, kh, kw = conv.weight.shape
    mode = "constant" if conv.padding_mode == "ZEROS" else "wrap"  # the two modes _conv creates
    x = jnp.pad(x, (*conv.padding, (0, 0)), mode=mode)
    h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    kernel = jnp.transpose(conv.weight, (2, 3, 1, 0))  # (kh, kw, Ci, Co)
    if jax.default_backend() == "cpu":
        views = [x[a:a + h, b:b + w] for a in range(kh) for b in range(kw)]
        y = jnp.concatenate(views, axis=-1) @ kernel.reshape(kh * kw * ci, co)
    else:
        y = jax.lax.conv_general_dilated(x[None], kernel, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
    return y + conv.bias[:, 0, 0]


class _Norm(eqx.Module):
    """GroupNorm over the whole image ("group"), LayerNorm over channels per pixel ("pixel"), or none."""

    mode: str = eqx.field(static=True)
    groups: int = eqx.field(static=True)
    weight: Float[Array, " C"]
    bias: Float[Array, " C"]

    def __init__(self, mode: str, groups: int, channels: int):
        self.mode, self.groups = mode, groups
        self.weight = jnp.ones(channels)
        self.bias = jnp.zeros(channels)

    def __call__(self, x: Float[Array, "H W C"]) -> Float[Array, "H W C"]:
        if self.mode == "none":
            return x
        h, w, c = x.shape
        groups = self.groups if self.mode == "group" else 1
        g = x.reshape(h, w, groups, c // groups)
        axes = (0, 1, 3) if self.mode == "group" else (3,)
        mean = g.mean(axis=axes, keepdims=True)
        var = g.var(axis=axes, keepdims=True)
        x = ((g - mean) * jax.lax.rsqrt(var + 1e-5)).reshape(h, w, c)
        return x * self.weight + self.bias


class _ResBlock(eqx.Module):
    norm1: _Norm
    conv1: eqx.nn.Conv2d
    temb: eqx.nn.Linear
    norm2: _Norm
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d | None

    def __init__(self, cin, cout, embed_dim, groups, padding, key, norm):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = _Norm(norm, groups, cin)
        self.conv1 = _conv(cin, cout, k1, padding)
        self.temb = eqx.nn.Linear(embed_dim, cout, key=k2)
        self.norm2 = _Norm(norm, groups, cout)
        # Zero the second conv so each block starts as the identity (stable deep residual nets).
        conv2 = _conv(cout, cout, k3, padding)
        self.conv2 = eqx.tree_at(lambda c: (c.weight, c.bias), conv2,
                                 (jnp.zeros_like(conv2.weight), jnp.zeros_like(conv2.bias)))
        self.skip = eqx.nn.Conv2d(cin, cout, 1, key=k4) if cin != cout else None

    def __call__(self, x: Float[Array, "H W Ci"], emb: Float[Array, " E"]) -> Float[Array, "H W Co"]:
        h = _apply_conv(self.conv1, jax.nn.silu(self.norm1(x)))
        h = h + self.temb(emb)
        h = _apply_conv(self.conv2, jax.nn.silu(self.norm2(h)))
        return h + (x if self.skip is None else _apply_conv(self.skip, x))


def _down(x: Float[Array, "H W C"]) -> Float[Array, "H/2 W/2 C"]:
    h, w, c = x.shape
    return x.reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3))


def _up(x: Float[Array, "H W C"]) -> Float[Array, "2*H 2*W C"]:
    return jnp.repeat(jnp.repeat(x, 2, axis=0), 2, axis=1)


class UNet(eqx.Module):
    """Noise-conditional U-Net: ``(x: (H, W), log_sigma: scalar) -> (H, W)``."""

    config: UNetConfig = eqx.field(static=True)
    freqs: Float[Array, " half"]
    embed: eqx.nn.MLP
    conv_in: eqx.nn.Conv2d
    down: tuple[tuple[_ResBlock, ...], ...]
    mid: tuple[_ResBlock, _ResBlock]
    up: tuple[tuple[_ResBlock, ...], ...]
    norm_out: _Norm
    conv_out: eqx.nn.Conv2d

    def __init__(self, config: UNetConfig = UNetConfig(), *, key: PRNGKeyArray):
        if not isinstance(config, UNetConfig):
            raise TypeError(f"UNet takes a UNetConfig, got {type(config).__name__}.")
        c = config
        self.config = c
        keys = iter(jax.random.split(key, 8 + 4 * len(c.channel_mults) * (c.num_res_blocks + 2)))
        # Fixed (never trained: see __call__) random Fourier frequencies of log sigma.
        self.freqs = c.fourier_scale * jax.random.normal(next(keys), (c.embed_dim // 2,))
        self.embed = eqx.nn.MLP(c.embed_dim, c.embed_dim, 2 * c.embed_dim, 1,
                                activation=jax.nn.silu, key=next(keys))
        chans = [c.width * m for m in c.channel_mults]
        self.conv_in = _conv(1, c.width, next(keys), c.padding)

        # Channel counts of everything the down path stores for the skips: conv_in, every down
        # block, and every downsampled map (DDPM/NCSN++ layout).
        down, skips, cin = [], [c.width], c.width
        for level, ch in enumerate(chans):
            blocks = []
            for _ in range(c.num_res_blocks):
                blocks.append(_ResBlock(cin, ch, c.embed_dim, c.groups, c.padding, next(keys), c.norm))
                cin = ch
                skips.append(ch)
            if level < len(chans) - 1:
                skips.append(ch)
            down.append(tuple(blocks))
        self.down = tuple(down)
        self.mid = (_ResBlock(cin, cin, c.embed_dim, c.groups, c.padding, next(keys), c.norm),
                    _ResBlock(cin, cin, c.embed_dim, c.groups, c.padding, next(keys), c.norm))
        up = []
        for ch in reversed(chans):
            blocks = []
            for _ in range(c.num_res_blocks + 1):
                blocks.append(_ResBlock(cin + skips.pop(), ch, c.embed_dim, c.groups, c.padding, next(keys), c.norm))
                cin = ch
            up.append(tuple(blocks))
        self.up = tuple(up)
        self.norm_out = _Norm(c.norm, c.groups, cin)
        conv_out = _conv(cin, 1, next(keys), c.padding)
        self.conv_out = eqx.tree_at(lambda m: (m.weight, m.bias), conv_out,
                                    (jnp.zeros_like(conv_out.weight), jnp.zeros_like(conv_out.bias)))

    def __call__(self, x: Float[Array, "H W"], log_sigma: Float[ArrayLike, ""]) -> Float[Array, "H W"]:
        if x.ndim != 2:
            raise ValueError(f"UNet takes one image (H, W), got shape {x.shape}; vmap over batches.")
        h0, w0 = x.shape
        m = self.config.multiple
        ph, pw = (-h0) % m, (-w0) % m
        if ph or pw:
            mode = "reflect" if self.config.pad_mode == "reflect" else "constant"
            if mode == "reflect" and (ph >= h0 or pw >= w0):
                mode = "constant"  # reflect needs the image to be larger than the pad
            x = jnp.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), mode=mode)

        phase = jnp.asarray(log_sigma, dtype=x.dtype) * jax.lax.stop_gradient(self.freqs)
        emb = self.embed(jnp.concatenate([jnp.sin(2 * math.pi * phase), jnp.cos(2 * math.pi * phase)]))
        emb = jax.nn.silu(emb)

        h = _apply_conv(self.conv_in, x[:, :, None])  # channels last throughout
        hs = [h]
        last = len(self.down) - 1
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                hs.append(h)
            if level < last:
                h = _down(h)
                hs.append(h)
        for block in self.mid:
            h = block(h, emb)
        for i, blocks in enumerate(self.up):
            for block in blocks:
                h = block(jnp.concatenate([h, hs.pop()], axis=-1), emb)
            if i < last:
                h = _up(h)
        out = _apply_conv(self.conv_out, jax.nn.silu(self.norm_out(h)))[:, :, 0]
        if ph or pw:
            out = out[ph // 2: ph // 2 + h0, pw // 2: pw // 2 + w0]
        return out
