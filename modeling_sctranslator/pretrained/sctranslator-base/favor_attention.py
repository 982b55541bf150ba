"""FAVOR+ self-attention (Performer, softmax kernel, non-causal), exactly as scTranslator runs it.

Reference: Choromanski et al., "Rethinking Attention with Performers" (2021), and performer-pytorch
1.1.4, whose kernel functions the tests compare against. The module is wired here so that
transformers can build it on the ``meta`` device and save/restore its random features.

The original's masking quirk is kept on purpose: a padding mask only zeroes the *values* of padded
positions. Padded keys still enter the normaliser and the key maximum, and padded queries still
produce outputs, so results depend on how much padding a cell has (see ``docs``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def in_float32(fn):
    """Run ``fn`` in float32 when called under autocast (``dtype=torch.bfloat16`` inference, ``--bf16``
    training): autocast off, floating tensor arguments cast up. For the steps whose rounding would swamp the
    small cell-to-cell differences a model's outputs carry: the value embedding (expression values), softmax
    attention and the output heads. The FAVOR+ features and normaliser stay in bfloat16: in float32 they kept
    most of the cost (x1.2 instead of x2.1 at 20,000 genes) for no measurable agreement (shipped model per-protein
    r with float32 0.99985 vs 0.99972 at worst over 200 cells). Without autocast ``fn`` runs as it is (exactly; a
    model cast to bfloat16 as a whole computes everything in bfloat16)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor) and a.is_floating_point()]
        device = tensors[0].device.type if tensors else "cpu"
        if not torch.is_autocast_enabled(device):
            return fn(*args, **kwargs)

        def up(a):
            return a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a

        with torch.autocast(device, enabled=False):
            return fn(*(up(a) for a in args), **{k: up(v) for k, v in kwargs.items()})

    return wrapper


def gaussian_orthogonal_random_matrix(
    nb_rows: int,
    nb_columns: int,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random features ``W`` of shape ``(nb_rows, nb_columns)``.

    Blocks of ``nb_columns`` orthonormal rows (QR of a Gaussian matrix), rows scaled by the norms
    of independent Gaussian vectors, as performer-pytorch's ``scaling=0``. Drawn on the CPU (QR is
    not available everywhere) and moved to ``device``.
    """
    full_blocks, remainder = divmod(nb_rows, nb_columns)
    blocks = [_orthonormal_rows(nb_columns, generator) for _ in range(full_blocks)]
    if remainder:
        blocks.append(_orthonormal_rows(nb_columns, generator)[:remainder])
    matrix = torch.cat(blocks)
    norms = torch.randn(nb_rows, nb_columns, generator=generator).norm(dim=1)
    return (norms[:, None] * matrix).to(device)


def _orthonormal_rows(size: int, generator: torch.Generator | None) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(size, size, generator=generator), mode="reduced")
    return q.t()


def softmax_kernel_features(
    data: torch.Tensor, projection_matrix: torch.Tensor, is_query: bool, eps: float
) -> torch.Tensor:
    """Positive random features of queries or keys, up to the constant factor ``m ** -0.5``.

    ``data``: (batch, heads, length, head_dim); returns (batch, heads, length, features).
    ``exp(c·x·Wᵀ − c²|x|²/2 − max) + eps`` with ``c = head_dim ** -0.25``; the maximum is per row
    for queries and per (batch, head) for keys, and is a constant for autograd. The factor
    ``m ** -0.5`` of the reference cancels between numerator and normaliser of the attention, so
    it is left out (one pass less over the largest tensor). Without autograd the element-wise
    chain runs in place: it is half the cost of the whole model.
    """
    scale = data.shape[-1] ** -0.25
    projected = torch.matmul(data, (scale * projection_matrix).t().to(data.dtype))
    reduce_dims = -1 if is_query else (-1, -2)
    maximum = projected.detach().amax(dim=reduce_dims, keepdim=True)
    half_sq_norm = torch.linalg.vector_norm(data, dim=-1, keepdim=True).square() * (scale**2 / 2)
    shift = half_sq_norm + maximum
    if torch.is_grad_enabled() and (projected.requires_grad or shift.requires_grad):
        return (projected - shift).exp() + eps
    return projected.sub_(shift).exp_().add_(eps)


def favor_attention(
    q_features: torch.Tensor, k_features: torch.Tensor, values: torch.Tensor,
    key_counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Non-causal linear attention ``q'·(Σ k'vᵀ) / (q'·Σ k')`` (no epsilon, as the original).

    The normaliser rides along as an extra value column of ones, so numerator and denominator
    come from one matrix product each. ``key_counts`` (length,): how many identical keys each position
    stands for (shared padding: one position for all padded ones); default one each.
    """
    *batch, length, width = values.shape
    augmented = values.new_empty(*batch, length, width + 1)
    if key_counts is None:
        augmented[..., :width] = values
        augmented[..., width] = 1.0
    else:
        counts = key_counts.to(values.dtype)
        augmented[..., :width] = values * counts[:, None]
        augmented[..., width] = counts
    context = torch.matmul(k_features.transpose(-1, -2), augmented)
    out = torch.matmul(q_features, context)
    return out[..., :width] / out[..., width:]


def masked_softmax_kernel_features(
    data: torch.Tensor, projection_matrix: torch.Tensor, is_query: bool, eps: float, mask: torch.Tensor
) -> torch.Tensor:
    """:func:`softmax_kernel_features` for the variant's ``"masked"`` attention.

    ``mask`` (batch, length), True = real. For keys the maximum is taken over real positions only,
    so it does not depend on padding; padded keys are then left out by :func:`masked_favor_attention`
    (their features are computed but never summed). Queries are per row already.
    """
    scale = data.shape[-1] ** -0.25
    projected = torch.matmul(data, (scale * projection_matrix).t().to(data.dtype))
    if is_query:
        maximum = projected.detach().amax(dim=-1, keepdim=True)
    else:  # max over features first (small), then over the real positions
        per_position = projected.detach().amax(dim=-1).masked_fill(~mask[:, None, :], float("-inf"))
        maximum = torch.nan_to_num(per_position.amax(dim=-1), neginf=0.0)[..., None, None]  # no real key: 0
    half_sq_norm = torch.linalg.vector_norm(data, dim=-1, keepdim=True).square() * (scale**2 / 2)
    shift = half_sq_norm + maximum
    if torch.is_grad_enabled() and (projected.requires_grad or shift.requires_grad):
        return (projected - shift).exp() + eps
    return projected.sub_(shift).exp_().add_(eps)  # in place without autograd, as the original's


def masked_favor_attention(
    q_features: torch.Tensor, k_features: torch.Tensor, values: torch.Tensor, key_mask: torch.Tensor
) -> torch.Tensor:
    """:func:`favor_attention` over real keys only: ``Σ_{n real} k'_n v_nᵀ / Σ_{n real} k'_n``.

    Padded keys are dropped by zeroing their rows of ``[v, 1]`` (cheaper than zeroing their
    features); a query whose cell has no real key gets 0, not 0/0.
    """
    *batch, length, width = values.shape
    keep = key_mask[:, None, :, None].to(values.dtype)
    augmented = torch.cat([values * keep, keep.expand(*batch, length, 1)], dim=-1)
    out = torch.matmul(q_features, torch.matmul(k_features.transpose(-1, -2), augmented))
    denominator = out[..., width:]
    return out[..., :width] / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


@in_float32
def exact_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, output_attentions: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax attention ``softmax(q·kᵀ/√d)·v`` over real keys only; (batch, heads, queries, dim).

    ``key_mask`` (batch, keys), True = real. A query whose cell has no real key gets 0 (its row is
    computed over all keys, then zeroed, so no NaN reaches autograd).
    """
    empty = None
    attn_mask = None
    if key_mask is not None and not bool(key_mask.all()):  # no padding: the unmasked (fastest) kernel
        empty = ~key_mask.any(dim=-1)
        key_mask = key_mask | empty[:, None]
        attn_mask = key_mask[:, None, None, :]
    if output_attentions:
        scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        out = torch.matmul(weights, v)
    else:
        weights = None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    if empty is not None and bool(empty.any()):
        out = out.masked_fill(empty[:, None, None, None], 0.0)
        weights = None if weights is None else weights.masked_fill(empty[:, None, None, None], 0.0)
    return out, weights


def favor_attention_weights(q_features: torch.Tensor, k_features: torch.Tensor) -> torch.Tensor:
    """The attention matrix the layer applies: ``A_ij = q'_i·k'_j / Σ_n q'_i·k'_n``.

    (batch, heads, queries, keys); rows sum to one over *all* keys, padded ones included, which is
    what the original computed. Quadratic in length: use only for small inputs or maps.
    """
    scores = torch.matmul(q_features, k_features.transpose(-1, -2))
    return scores / scores.sum(dim=-1, keepdim=True)


def add_head_projections(module: nn.Module, hidden_size: int, num_heads: int, head_dim: int) -> None:
    """Give ``module`` biased ``to_q``/``to_k``/``to_v`` (hidden → heads · head_dim) and ``to_out`` back.

    Attribute names match the original checkpoints' (``...fn.to_q``), so conversion maps them one to one.
    """
    inner = num_heads * head_dim
    module.num_heads = num_heads
    module.head_dim = head_dim
    module.to_q = nn.Linear(hidden_size, inner)
    module.to_k = nn.Linear(hidden_size, inner)
    module.to_v = nn.Linear(hidden_size, inner)
    module.to_out = nn.Linear(inner, hidden_size)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, length, heads · head_dim) → (batch, heads, length, head_dim), a view."""
    batch, length, width = x.shape
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, length, head_dim) → (batch, length, heads · head_dim)."""
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


class FavorSelfAttention(nn.Module):
    """Multi-head FAVOR+ self-attention with biased q/k/v/out projections.

    ``projection_matrix`` (features, head_dim) is a persistent buffer shared by the heads of the
    layer, so checkpoints carry the random features and reloads are exact.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        head_dim: int,
        nb_features: int,
        kernel_epsilon: float = 1e-4,
        masking: str = "original",
    ) -> None:
        super().__init__()
        if masking not in ("original", "masked", "exact"):
            raise ValueError(f"masking must be original, masked or exact, not {masking!r}")
        self.masking = masking
        self.kernel_epsilon = kernel_epsilon
        add_head_projections(self, hidden_size, num_heads, head_dim)
        self.register_buffer("projection_matrix", torch.empty(nb_features, head_dim), persistent=True)

    @torch.no_grad()
    def redraw_projection_matrix(self, generator: torch.Generator | None = None) -> None:
        fresh = gaussian_orthogonal_random_matrix(*self.projection_matrix.shape, generator=generator)
        self.projection_matrix.copy_(fresh)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        key_counts: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``hidden_states`` (batch, length, hidden); ``attention_mask`` (batch, length), True = keep.

        Returns the output (batch, length, hidden) and, if asked, the attention weights
        (batch, heads, length, length). ``key_counts``: see :func:`favor_attention` (original masking only).
        """
        q, k, v = (split_heads(layer(hidden_states), self.num_heads) for layer in (self.to_q, self.to_k, self.to_v))
        if self.masking != "original":
            return self._forward_masked(q, k, v, attention_mask, output_attentions)
        if attention_mask is not None:
            # the original's (only) use of the mask: zero the values of padded positions
            v = v.masked_fill(~attention_mask[:, None, :, None], 0.0)
        q_features = softmax_kernel_features(q, self.projection_matrix, True, self.kernel_epsilon)
        k_features = softmax_kernel_features(k, self.projection_matrix, False, self.kernel_epsilon)
        out = favor_attention(q_features, k_features, v, key_counts)
        weights = favor_attention_weights(q_features, k_features) if output_attentions else None
        return self.to_out(merge_heads(out)), weights

    def _forward_masked(self, q, k, v, attention_mask, output_attentions):
        """The variant's attention: padded keys take no part (``"masked"`` FAVOR+ or ``"exact"`` softmax)."""
        if self.masking == "exact":
            out, weights = exact_attention(q, k, v, attention_mask, output_attentions)
            return self.to_out(merge_heads(out)), weights
        if attention_mask is None:
            attention_mask = torch.ones(q.shape[0], q.shape[2], dtype=torch.bool, device=q.device)
        matrix, eps = self.projection_matrix, self.kernel_epsilon
        q_features = masked_softmax_kernel_features(q, matrix, True, eps, attention_mask)
        k_features = masked_softmax_kernel_features(k, matrix, False, eps, attention_mask)
        out = masked_favor_attention(q_features, k_features, v, attention_mask)
        weights = None
        if output_attentions:
            scores = torch.matmul(q_features, k_features.transpose(-1, -2)) * attention_mask[:, None, None, :]
            total = scores.sum(dim=-1, keepdim=True)
            weights = scores / torch.where(total > 0, total, torch.ones_like(total))
        return self.to_out(merge_heads(out)), weights


class CrossAttention(nn.Module):
    """Multi-head exact softmax cross-attention (queries from one sequence, keys/values from another).

    Used by the variant's translator: protein queries over the encoder's gene outputs. Exact, since
    its cost is proteins × genes (small next to the encoder's self-attention).
    """

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        add_head_projections(self, hidden_size, num_heads, head_dim)

    def forward(
        self,
        queries: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``queries`` (B, Q, hidden), ``context`` (B, K, hidden), ``context_mask`` (B, K) True = real."""
        q = split_heads(self.to_q(queries), self.num_heads)
        k = split_heads(self.to_k(context), self.num_heads)
        v = split_heads(self.to_v(context), self.num_heads)
        out, weights = exact_attention(q, k, v, context_mask, output_attentions)
        return self.to_out(merge_heads(out)), weights


class FeedForward(nn.Module):
    """``Linear(d, mult·d) → GELU → Linear(mult·d, d)``."""

    def __init__(self, hidden_size: int, mult: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(hidden_size, hidden_size * mult)
        self.w2 = nn.Linear(hidden_size * mult, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.gelu(self.w1(x)))

