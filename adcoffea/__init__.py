"""adcoffea: model-agnostic anomaly-detection searches on the Scikit-HEP stack.

Imports here are kept light on purpose: heavy stacks (coffea, torch, zfit/TensorFlow)
load only in the modules that use them, so the CLI and dask/loky workers start fast.
"""

from adcoffea.errors import AdcoffeaError, ConfigError, InputFileError

__version__ = "0.1.0"

__all__ = ["AdcoffeaError", "ConfigError", "InputFileError", "__version__"]
