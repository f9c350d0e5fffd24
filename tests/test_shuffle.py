"""shuffled_indices must reproduce random.Random(seed).shuffle exactly, so it is checked against that shuffle itself."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makemore.shuffle import shuffled_indices


def python_shuffle(n: int, seed) -> np.ndarray:
    x = list(range(n))
    random.Random(seed).shuffle(x)
    return np.array(x, dtype=np.int64)


@pytest.mark.parametrize("seed", [0, 1, 42, 2**40 + 3])
def test_every_small_n_matches_random_shuffle(seed):
    for n in range(301):
        got = shuffled_indices(n, seed)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, python_shuffle(n, seed), err_msg=f"n={n}")


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 200_000), seed=st.integers())
def test_matches_random_shuffle(n, seed):
    np.testing.assert_array_equal(shuffled_indices(n, seed), python_shuffle(n, seed))


def test_large_n_matches_random_shuffle():
    # bit lengths up to 22: blocks of thousands of steps, where tries between their bounds need the sequential pass
    n = 3_000_017
    np.testing.assert_array_equal(shuffled_indices(n), python_shuffle(n, 42))


def test_default_seed_is_42():
    np.testing.assert_array_equal(shuffled_indices(1000), python_shuffle(1000, 42))


@pytest.mark.parametrize("n", [-1, 2**31])
def test_rejects_n_out_of_range(n):
    with pytest.raises(ValueError):
        shuffled_indices(n)
