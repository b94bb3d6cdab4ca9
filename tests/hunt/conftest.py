import numpy as np
import pytest

EDGES = np.arange(1500.0, 8001.0, 100.0)


@pytest.fixture
def edges() -> np.ndarray:
    return EDGES.copy()
