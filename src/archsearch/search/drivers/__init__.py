"""Search drivers: methods made of several searches, selected by ``SearchConfig.driver``. Importing this
package registers every driver in ``DRIVERS``."""

from archsearch.search.drivers.base import DRIVERS
from archsearch.search.drivers import progressive  # noqa: F401  (registers "progressive")

__all__ = ["DRIVERS"]
