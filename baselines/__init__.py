"""Baseline models. Importing this package registers them (see `benchmark.registry`).

The import order is the order of `bench models` and of the table rows: the reference forecast
first, then the recurrent family, then the convolutional one.
"""

from baselines import persistence  # noqa: F401, I001  (imported to register; order matters)
from baselines import convlstm  # noqa: F401
from baselines import simvp  # noqa: F401
