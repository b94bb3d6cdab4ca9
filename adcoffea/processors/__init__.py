"""coffea processors of the three searches."""

from __future__ import annotations

from adcoffea.processors.base import SearchProcessor
from adcoffea.processors.dijet import DijetProcessor
from adcoffea.processors.semivisible import SemivisibleProcessor
from adcoffea.processors.yxh import YXHProcessor

PROCESSORS: dict[str, type[SearchProcessor]] = {
    "dijet": DijetProcessor,
    "semivisible": SemivisibleProcessor,
    "yxh": YXHProcessor,
}

__all__ = [
    "PROCESSORS",
    "DijetProcessor",
    "SearchProcessor",
    "SemivisibleProcessor",
    "YXHProcessor",
]
