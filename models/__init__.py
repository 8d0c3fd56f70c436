"""The models this benchmark exists to evaluate. Importing this package registers them."""

from models import diffuma  # noqa: F401  (imported to register diffuma, diffuma-mamba, diffuma-randcond)
