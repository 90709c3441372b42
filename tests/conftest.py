"""Fixtures shared across test files."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models: one intra-op thread is as fast, deterministic, and immune to a busy machine's stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
