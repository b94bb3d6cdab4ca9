"""The anomaly-detection methods: the one list of their names and what each needs.

Everything that depends on the method (config validation, training, bundles, which
columns the processor collects, which fits exclude a signal region) reads this registry,
so a method is added in one place. This module imports nothing heavy (no torch), so the
config can use it.

Example:
    >>> METHODS[:3]
    ('autoencoder', 'vae', 'nae')
    >>> METHOD_INFO["cwola"].weakly_supervised, sorted(METHOD_INFO["vrnn"].inputs)
    (True, ['constituents'])
    >>> CONSTITUENT_METHODS, WEAKLY_SUPERVISED_METHODS
    (('antelope', 'vrnn'), ('cwola', 'cathode'))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "CONSTITUENT_METHODS",
    "METHODS",
    "METHOD_INFO",
    "SIGNAL_PRIOR_METHODS",
    "WEAKLY_SUPERVISED_METHODS",
    "Method",
    "MethodInfo",
]

#: the method names, as a type (the config's ``model.method`` is validated against it)
Method = Literal["autoencoder", "vae", "nae", "antelope", "vrnn", "cwola", "cathode", "supervised"]
#: the method names, in the order of :data:`Method`
METHODS: tuple[str, ...] = get_args(Method)


@dataclass(frozen=True)
class MethodInfo:
    """What a method reads and how it learns.

    Attributes:
        inputs: the parts of :class:`~adcoffea.features.ModelInputs` it reads
            (``high_level``, ``event``, ``constituents``).
        weakly_supervised: trained signal region against sidebands in the observable; a
            fit of its selected events leaves the signal region out.
        signal_prior: learns from the labelled signal templates (``datasets.signal``)
            besides the data.
    """

    inputs: frozenset[str]
    weakly_supervised: bool = False
    signal_prior: bool = False


_HIGH_LEVEL = frozenset({"high_level"})
_WEAK = frozenset({"high_level", "event"})
_CONSTITUENTS = frozenset({"constituents"})

#: method name -> what it needs (read-only)
METHOD_INFO: Mapping[str, MethodInfo] = MappingProxyType(
    {
        "autoencoder": MethodInfo(_HIGH_LEVEL),
        "vae": MethodInfo(_HIGH_LEVEL),
        "nae": MethodInfo(_HIGH_LEVEL),
        "antelope": MethodInfo(_CONSTITUENTS, signal_prior=True),
        "vrnn": MethodInfo(_CONSTITUENTS),
        "cwola": MethodInfo(_WEAK, weakly_supervised=True),
        "cathode": MethodInfo(_WEAK, weakly_supervised=True),
        "supervised": MethodInfo(_HIGH_LEVEL, signal_prior=True),
    }
)
if tuple(METHOD_INFO) != METHODS:  # pragma: no cover - a one-place edit was only half done
    raise ImportError("adcoffea.models.methods: METHOD_INFO and Method list different methods")

#: methods that read jet constituents (the processor must collect them)
CONSTITUENT_METHODS = tuple(m for m, i in METHOD_INFO.items() if "constituents" in i.inputs)
#: weakly supervised methods (CWoLa hunting, CATHODE)
WEAKLY_SUPERVISED_METHODS = tuple(m for m, i in METHOD_INFO.items() if i.weakly_supervised)
#: methods that learn from a labelled signal sample (a signal prior) besides the data
SIGNAL_PRIOR_METHODS = tuple(m for m, i in METHOD_INFO.items() if i.signal_prior)
