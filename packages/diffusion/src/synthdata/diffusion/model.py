"""GLIDE's text-conditional UNet, its text transformer, and the super-resolution / inpainting variants.

Written for synthdata from the architecture of the paper's code (improved/guided-diffusion UNet + a GPT-style
text transformer); parameter names and shapes equal the official ones so official checkpoints load with
``strict=True``.

The text is encoded once per batch by :meth:`Text2ImUNet.encode_text` into a :class:`TextEmbedding`; the
forward takes either ``tokens``/``mask`` or a precomputed ``text_emb``. The embedding of the empty prompt
(used by classifier-free guidance) is cached once per model by :meth:`Text2ImUNet.empty_text_embedding`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from synthdata.diffusion._layers import GroupNorm32, LayerNorm, attention, timestep_embedding
from synthdata.diffusion.options import GlideOptions, options_from

__all__ = [
    "InpaintText2ImUNet",
    "SuperResInpaintText2ImUNet",
    "SuperResText2ImUNet",
    "Text2ImUNet",
    "TextEmbedding",
    "create_model",
]

N_VOCAB = 50257


# --------------------------------------------------------------------------------------------- text side
class _MultiheadAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_qkv = nn.Linear(width, width * 3)
        self.c_proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        bs, n_ctx, width = x.shape
        qkv = self.c_qkv(x).view(bs, n_ctx, self.heads, -1)  # per head: [q | k | v]
        q, k, v = qkv.permute(0, 2, 1, 3).split(width // self.heads, dim=-1)
        out = attention(q, k, v)  # (bs, heads, n_ctx, ch)
        return self.c_proj(out.permute(0, 2, 1, 3).reshape(bs, n_ctx, width))


class _MLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, width * 4)
        self.c_proj = nn.Linear(width * 4, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class _ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = _MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = _MLP(width)
        self.ln_2 = LayerNorm(width)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    """Bidirectional transformer over the padded token sequence (no attention mask: padding is handled by
    ``padding_embedding`` in the UNet)."""

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList([_ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


@dataclass
class TextEmbedding:
    """The text conditioning of a batch: ``xf_proj`` (B, 4·model_channels) added to the timestep embedding,
    ``xf_out`` (B, xf_width, text_ctx) attended to by every attention block (already in the model dtype)."""

    xf_proj: Tensor
    xf_out: Tensor

    def __len__(self) -> int:
        return self.xf_proj.shape[0]

    def cat(self, other: TextEmbedding) -> TextEmbedding:
        return TextEmbedding(torch.cat([self.xf_proj, other.xf_proj]), torch.cat([self.xf_out, other.xf_out]))

    def expand(self, batch: int) -> TextEmbedding:
        if len(self) == batch:
            return self
        if len(self) != 1:
            raise ValueError(f"cannot expand a text embedding of batch {len(self)} to {batch}")
        return TextEmbedding(
            self.xf_proj.expand(batch, *self.xf_proj.shape[1:]), self.xf_out.expand(batch, *self.xf_out.shape[1:])
        )

    def index(self, rows: Any) -> TextEmbedding:
        return TextEmbedding(self.xf_proj[rows], self.xf_out[rows])


# --------------------------------------------------------------------------------------------- UNet parts
class _Upsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class _Downsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class ResBlock(nn.Module):
    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        out_channels: int | None = None,
        *,
        use_scale_shift_norm: bool,
        up: bool = False,
        down: bool = False,
    ):
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            GroupNorm32(channels, act=True), nn.Identity(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = _Upsample(channels, False), _Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = _Downsample(channels, False), _Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels)
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels, act=True),
            nn.Identity(),  # the official SiLU slot (fused into the norm here)
            nn.Dropout(p=dropout),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers[0](x)
        if self.updown:
            h = self.h_upd(h)
            x = self.x_upd(x)
        h = self.in_layers[2](h)
        emb_out = self.emb_layers(emb).to(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h, scale=scale, shift=shift)
        else:
            h = self.out_layers[0](h + emb_out)
        h = self.out_layers[3](self.out_layers[2](h))
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over the feature map, with the text tokens' keys/values prepended (``encoder_kv``)."""

    def __init__(self, channels: int, num_heads: int, num_head_channels: int, encoder_channels: int | None):
        super().__init__()
        self.num_heads = num_heads if num_head_channels == -1 else channels // num_head_channels
        if channels % self.num_heads:
            raise ValueError(f"{channels} channels do not split into {self.num_heads} heads")
        self.norm = GroupNorm32(channels, act=False)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        if encoder_channels is not None:
            self.encoder_kv = nn.Conv1d(encoder_channels, channels * 2, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor, encoder_out: Tensor | None = None) -> Tensor:
        b, c, *spatial = x.shape
        heads = self.num_heads
        ch = c // heads
        qkv = self.qkv(self.norm(x).reshape(b, c, -1))  # (b, 3c, T), per head [q | k | v]
        length = qkv.shape[-1]
        q, k, v = qkv.reshape(b, heads, 3 * ch, length).transpose(-1, -2).split(ch, dim=-1)
        if encoder_out is not None:
            ekv = self.encoder_kv(encoder_out)  # (b, 2c, S), per head [k | v]
            ek, ev = ekv.reshape(b, heads, 2 * ch, -1).transpose(-1, -2).split(ch, dim=-1)
            k = torch.cat([ek, k], dim=-2)
            v = torch.cat([ev, v], dim=-2)
        h = attention(q, k, v)  # (b, heads, T, ch)
        h = h.transpose(-1, -2).reshape(b, c, length)
        return x + self.proj_out(h).reshape(b, c, *spatial)


class _Seq(nn.ModuleList):
    """The official ``TimestepEmbedSequential``: routes ``emb`` to ResBlocks and the text to attention."""

    def forward(self, x: Tensor, emb: Tensor, encoder_out: Tensor | None) -> Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, AttentionBlock):
                x = layer(x, encoder_out)
            else:
                x = layer(x)
        return x


# --------------------------------------------------------------------------------------------- the model
class Text2ImUNet(nn.Module):
    """GLIDE's text-conditional UNet (the 64 px base model when built from :func:`base_options`).

    ``forward(x, timesteps, tokens=None, mask=None, *, text_emb=None)`` → ``(B, 6, H, W)``: eps then the
    learned-range variance values. ``timesteps`` are original (not respaced) diffusion steps.
    """

    in_channels_factor = 1
    extra_in_channels = 0

    def __init__(self, options: GlideOptions):
        super().__init__()
        o = options
        self.options = o
        self.text_ctx = o.text_ctx
        self.xf_width = o.xf_width
        self.xf_padding = o.xf_padding
        self.model_channels = mc = o.num_channels
        self.dtype = torch.float32  # compute dtype of the blocks; see convert_to_dtype
        channel_mult = o.channel_mult_tuple
        attention_ds = o.attention_ds
        in_channels = 3 * self.in_channels_factor + self.extra_in_channels
        num_heads_upsample = o.num_heads if o.num_heads_upsample == -1 else o.num_heads_upsample
        encoder_channels = o.xf_width or None
        time_embed_dim = mc * 4

        self.time_embed = nn.Sequential(
            nn.Linear(mc, time_embed_dim), nn.SiLU(), nn.Linear(time_embed_dim, time_embed_dim)
        )

        def res(ch_in: int, ch_out: int | None = None, **kw: bool) -> ResBlock:
            return ResBlock(
                ch_in, time_embed_dim, o.dropout, ch_out, use_scale_shift_norm=o.use_scale_shift_norm, **kw
            )

        def attn(ch_: int, heads: int) -> AttentionBlock:
            return AttentionBlock(ch_, heads, o.num_head_channels, encoder_channels)

        ch = input_ch = int(channel_mult[0] * mc)
        self.input_blocks = nn.ModuleList([_Seq([nn.Conv2d(in_channels, ch, 3, padding=1)])])
        input_block_chans = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(o.num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(mult * mc))]
                ch = int(mult * mc)
                if ds in attention_ds:
                    layers.append(attn(ch, o.num_heads))
                self.input_blocks.append(_Seq(layers))
                input_block_chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(
                    _Seq([res(ch, ch, down=True) if o.resblock_updown else _Downsample(ch, True)])
                )
                input_block_chans.append(ch)
                ds *= 2

        self.middle_block = _Seq([res(ch), attn(ch, o.num_heads), res(ch)])

        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(o.num_res_blocks + 1):
                ich = input_block_chans.pop()
                layers = [res(ch + ich, int(mc * mult))]
                ch = int(mc * mult)
                if ds in attention_ds:
                    layers.append(attn(ch, num_heads_upsample))
                if level and i == o.num_res_blocks:
                    layers.append(res(ch, ch, up=True) if o.resblock_updown else _Upsample(ch, True))
                    ds //= 2
                self.output_blocks.append(_Seq(layers))

        self.out = nn.Sequential(
            GroupNorm32(ch, act=True), nn.Identity(), nn.Conv2d(input_ch, 6, 3, padding=1)
        )
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

        if self.xf_width:
            self.transformer = TextTransformer(o.xf_width, o.xf_layers, o.xf_heads)
            self.final_ln = LayerNorm(o.xf_width) if o.xf_final_ln else None
            self.token_embedding = nn.Embedding(N_VOCAB, o.xf_width)
            self.positional_embedding = nn.Parameter(torch.empty(o.text_ctx, o.xf_width))
            self.transformer_proj = nn.Linear(o.xf_width, time_embed_dim)
            if self.xf_padding:
                self.padding_embedding = nn.Parameter(torch.empty(o.text_ctx, o.xf_width))
            for p in (self.positional_embedding, *([self.padding_embedding] if self.xf_padding else [])):
                if p.device.type != "meta":
                    nn.init.normal_(p, std=0.01)

        self._empty_cache: dict[tuple[Any, ...], TextEmbedding] = {}
        self.register_load_state_dict_post_hook(lambda module, _keys: module._empty_cache.clear())

    # ------------------------------------------------------------------------------------------ dtypes
    def convert_to_dtype(self, dtype: torch.dtype) -> Text2ImUNet:
        """Run the blocks in ``dtype`` (float16 or bfloat16 on a GPU), as the official ``convert_to_fp16``:
        convolutions of the UNet blocks, the transformer's linears, ``transformer_proj`` and the token
        embedding change dtype; norms, time embedding, the ResBlocks' ``emb_layers``, the positional/padding
        embeddings and the output head stay float32. ``float32`` converts back."""
        for name, module in self.named_modules():
            in_blocks = name.startswith(("input_blocks", "middle_block", "output_blocks"))
            if (in_blocks and isinstance(module, nn.Conv1d | nn.Conv2d)) or (
                name.startswith("transformer") and isinstance(module, nn.Linear)
            ):
                module.to(dtype)
        if self.xf_width:
            self.token_embedding.to(dtype)
        self.dtype = dtype
        self._empty_cache.clear()
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> Text2ImUNet:  # .to(), .cuda(), .half() ...
        self._empty_cache.clear()
        return super()._apply(fn, recurse)

    # ------------------------------------------------------------------------------------------ text
    def encode_text(self, tokens: Tensor, mask: Tensor | None = None) -> TextEmbedding:
        """Embed a batch of padded token rows (``tokens`` int (B, text_ctx), ``mask`` bool (B, text_ctx))."""
        if not self.xf_width:
            raise ValueError("this model has no text transformer (xf_width=0)")
        xf_in = self.token_embedding(tokens.long()) + self.positional_embedding[None]
        if self.xf_padding:
            if mask is None:
                raise ValueError("xf_padding models need the token mask")
            xf_in = torch.where(mask[..., None].bool(), xf_in, self.padding_embedding[None])
        xf_out = self.transformer(xf_in.to(self.dtype))
        if self.final_ln is not None:
            xf_out = self.final_ln(xf_out)
        xf_proj = self.transformer_proj(xf_out[:, -1])
        return TextEmbedding(xf_proj=xf_proj, xf_out=xf_out.permute(0, 2, 1))

    @torch.no_grad()
    def empty_text_embedding(self) -> TextEmbedding:
        """The embedding of the empty prompt (batch 1), computed once per model/device/dtype and cached."""
        p = self.positional_embedding
        key = (p.device, self.dtype, self.text_ctx)
        cached = self._empty_cache.get(key)
        if cached is None:
            tokens = torch.full((1, self.text_ctx), N_VOCAB - 1, dtype=torch.long, device=p.device)
            mask = torch.zeros((1, self.text_ctx), dtype=torch.bool, device=p.device)
            cached = self._empty_cache[key] = self.encode_text(tokens, mask)
        return cached

    # ------------------------------------------------------------------------------------------ forward
    def prepare_input(self, x: Tensor, **kwargs: Any) -> Tensor:
        """Concatenate the variant's extra input channels (none for the base model)."""
        if kwargs:
            raise TypeError(f"unexpected inputs for {type(self).__name__}: {sorted(kwargs)}")
        return x

    def forward(
        self,
        x: Tensor,
        timesteps: Tensor,
        tokens: Tensor | None = None,
        mask: Tensor | None = None,
        *,
        text_emb: TextEmbedding | None = None,
        **inputs: Any,
    ) -> Tensor:
        x = self.prepare_input(x, **inputs)
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        xf_out = None
        if self.xf_width:
            if text_emb is None:
                if tokens is None:
                    raise ValueError("give tokens (and mask) or a precomputed text_emb")
                text_emb = self.encode_text(tokens, mask)
            text_emb = text_emb.expand(x.shape[0])
            emb = emb + text_emb.xf_proj.to(emb)
            xf_out = text_emb.xf_out
        return self.trunk(x, emb, xf_out)

    def trunk(
        self,
        x: Tensor,
        emb: Tensor,
        xf_out: Tensor | None,
        *,
        memory_format: torch.memory_format = torch.preserve_format,
    ) -> Tensor:
        """The UNet after conditioning: ``x`` (extra input channels already joined), the conditioning
        vector ``emb`` (time embedding + text projection) and the text tokens ``xf_out``."""
        h = x.to(self.dtype, memory_format=memory_format)
        hs = []
        for module in self.input_blocks:
            h = module(h, emb, xf_out)
            hs.append(h)
        h = self.middle_block(h, emb, xf_out)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb, xf_out)
        h = h.to(x.dtype)
        h = self.out[0](h)
        return self.out[2](h)


def _upsampled(low_res: Tensor | None, x: Tensor) -> Tensor:
    if low_res is None:
        raise ValueError("the super-resolution model needs low_res")
    return F.interpolate(low_res.to(x.dtype), x.shape[-2:], mode="bilinear", align_corners=False)


class SuperResText2ImUNet(Text2ImUNet):
    """The 64 → 256 upsampler: the low-res image, bilinearly upsampled, is concatenated to the input."""

    in_channels_factor = 2

    def prepare_input(self, x: Tensor, low_res: Tensor | None = None, **kwargs: Any) -> Tensor:  # type: ignore[override]
        super().prepare_input(x, **kwargs)
        return torch.cat([x, _upsampled(low_res, x)], dim=1)


def _inpaint_inputs(x: Tensor, image: Tensor | None, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    image = torch.zeros_like(x) if image is None else image.to(x.dtype)
    mask = torch.zeros_like(x[:, :1]) if mask is None else mask.to(x.dtype)
    return image * mask, mask


class InpaintText2ImUNet(Text2ImUNet):
    """Inpainting base: input is ``[x, inpaint_image * inpaint_mask, inpaint_mask]``."""

    in_channels_factor = 2
    extra_in_channels = 1

    def prepare_input(  # type: ignore[override]
        self, x: Tensor, inpaint_image: Tensor | None = None, inpaint_mask: Tensor | None = None, **kwargs: Any
    ) -> Tensor:
        super().prepare_input(x, **kwargs)
        return torch.cat([x, *_inpaint_inputs(x, inpaint_image, inpaint_mask)], dim=1)


class SuperResInpaintText2ImUNet(Text2ImUNet):
    """Inpainting upsampler: ``[x, inpaint_image * inpaint_mask, inpaint_mask, upsampled low_res]``."""

    in_channels_factor = 3
    extra_in_channels = 1

    def prepare_input(  # type: ignore[override]
        self,
        x: Tensor,
        inpaint_image: Tensor | None = None,
        inpaint_mask: Tensor | None = None,
        low_res: Tensor | None = None,
        **kwargs: Any,
    ) -> Tensor:
        super().prepare_input(x, **kwargs)
        return torch.cat([x, *_inpaint_inputs(x, inpaint_image, inpaint_mask), _upsampled(low_res, x)], dim=1)


class _SkipInitOnMeta(TorchFunctionMode):
    """Random initialisation of meta tensors is a no-op anyway; skipping it avoids importing torch's
    reference decompositions (seconds per process) when a model is built only for its keys and shapes."""

    _OPS = frozenset(
        {"normal_", "uniform_", "zero_", "zeros_", "ones_", "fill_", "constant_", "kaiming_uniform_", "kaiming_normal_"}
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in self._OPS:
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def create_model(
    options: GlideOptions | dict[str, Any],
    *,
    device: torch.device | str | None = None,
    seed: int | None = None,
) -> Text2ImUNet:
    """Build the GLIDE model for ``options`` (official option names), in float32, in eval mode.

    ``device="meta"`` builds without memory (for key/shape checks). ``seed`` makes the random initialisation
    reproducible (smoke models). With ``use_fp16`` set the model is *not* converted here: call
    ``model.convert_to_dtype(torch.float16)`` after loading weights (on a GPU).
    """
    o = options_from(options)
    cls: type[Text2ImUNet]
    if o.inpaint and o.super_res:
        cls = SuperResInpaintText2ImUNet
    elif o.inpaint:
        cls = InpaintText2ImUNet
    elif o.super_res:
        cls = SuperResText2ImUNet
    else:
        cls = Text2ImUNet
    fork = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    meta = device is not None and torch.device(device).type == "meta"
    with (
        fork,
        torch.device(device) if device is not None else contextlib.nullcontext(),
        _SkipInitOnMeta() if meta else contextlib.nullcontext(),
    ):
        if seed is not None:
            torch.manual_seed(seed)
        model = cls(o)
    return model.eval()


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
