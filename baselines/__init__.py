"""Baseline models. Importing this package registers them (see `benchmark.registry`).

The import order is the order of `bench models` and of the table rows: the reference forecasts
(persistence, climatology) first, then the recurrent family, then the convolutional and physics-guided ones.
"""

from baselines import persistence  # noqa: F401, I001  (imported to register; order matters)
from baselines import climatology  # noqa: F401
from baselines import convlstm  # noqa: F401
from baselines import predrnn  # noqa: F401
from baselines import predrnn_v2  # noqa: F401
from baselines import e3dlstm  # noqa: F401
from baselines import simvp  # noqa: F401
from baselines import pastnet  # noqa: F401
