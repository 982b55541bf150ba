"""Interpretation tests: one torch thread (2 shared cores: OpenMP spinning against other processes
makes tiny models ~100x slower with 2 threads)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
