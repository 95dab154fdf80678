"""The packaged all-MiniLM-L6-v2 loads offline and gives meaningful unit-length embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from prefmill.embeddings import DIMENSION, cosine_matrix, embed

pytestmark = pytest.mark.slow  # loads the packaged embedding model


def test_paraphrases_are_closer_than_unrelated_text() -> None:
    v = embed(
        ["The cat sat on the mat.", "A cat was sitting on the mat.", "Quarterly revenue rose 4%.", None]
    )
    assert v.shape == (4, DIMENSION)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = cosine_matrix(v)
    assert sim[0, 1] > 0.8
    assert sim[0, 2] < 0.3


def test_empty_input() -> None:
    assert embed([]).shape == (0, DIMENSION)
