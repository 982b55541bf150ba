"""Our FAVOR+ equals performer-pytorch 1.1.4 (the original's attention) on the same weights."""

from __future__ import annotations

import warnings

import pytest
import torch

from modeling_sctranslator.favor_attention import (
    FavorSelfAttention,
    favor_attention,
    favor_attention_weights,
    gaussian_orthogonal_random_matrix,
    softmax_kernel_features,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    performer_pytorch = pytest.importorskip("performer_pytorch.performer_pytorch")


def test_kernel_and_linear_attention_match_reference():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 50, 16) for _ in range(3))
    projection = performer_pytorch.gaussian_orthogonal_random_matrix(40, 16)
    ref_q = performer_pytorch.softmax_kernel(q, projection_matrix=projection, is_query=True)
    ref_k = performer_pytorch.softmax_kernel(k, projection_matrix=projection, is_query=False)
    reference = performer_pytorch.linear_attention(ref_q, ref_k, v)
    ours_q = softmax_kernel_features(q, projection, True, 1e-4)
    ours_k = softmax_kernel_features(k, projection, False, 1e-4)
    ratio = 40**-0.5  # our features leave out this constant factor; it cancels in attention
    torch.testing.assert_close(ours_q * ratio, ref_q, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours_k * ratio, ref_k, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(favor_attention(ours_q, ours_k, v), reference, atol=1e-5, rtol=1e-5)


def test_attention_weights_reproduce_linear_attention():
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 2, 20, 8) for _ in range(3))
    projection = gaussian_orthogonal_random_matrix(10, 8)
    qf = softmax_kernel_features(q, projection, True, 1e-4)
    kf = softmax_kernel_features(k, projection, False, 1e-4)
    torch.testing.assert_close(favor_attention_weights(qf, kf) @ v, favor_attention(qf, kf, v), atol=1e-5, rtol=1e-5)


def test_kernel_gradients_match_reference():
    torch.manual_seed(2)
    q = torch.randn(1, 2, 30, 16, requires_grad=True)
    projection = performer_pytorch.gaussian_orthogonal_random_matrix(20, 16)
    performer_pytorch.softmax_kernel(q, projection_matrix=projection, is_query=False).sum().backward()
    reference = q.grad.clone()
    q.grad = None
    (softmax_kernel_features(q, projection, False, 1e-4) * 20**-0.5).sum().backward()
    torch.testing.assert_close(q.grad, reference, atol=1e-5, rtol=1e-4)


def test_module_matches_reference_self_attention_with_mask():
    torch.manual_seed(3)
    reference = performer_pytorch.SelfAttention(dim=24, heads=3, dim_head=16, qkv_bias=True).eval()
    ours = FavorSelfAttention(24, 3, 16, reference.fast_attention.nb_features).eval()
    ours.load_state_dict(
        {
            "projection_matrix": reference.fast_attention.projection_matrix,
            **{f"{name}.{p}": getattr(getattr(reference, name), p) for name in ("to_q", "to_k", "to_v", "to_out")
               for p in ("weight", "bias")},
        }
    )
    x = torch.randn(2, 30, 24)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 22:] = False
    with torch.no_grad():
        expected = reference(x.clone(), mask=mask)
        actual, _ = ours(x, mask)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_random_features_have_orthogonal_blocks_and_gaussian_norms():
    matrix = gaussian_orthogonal_random_matrix(266, 64, generator=torch.Generator().manual_seed(0))
    assert matrix.shape == (266, 64)
    block = matrix[:64] / matrix[:64].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.t(), torch.eye(64), atol=1e-4, rtol=0)
    assert 6.0 < float(matrix.norm(dim=1).mean()) < 10.0  # chi distribution with 64 dof: mean ≈ 8
