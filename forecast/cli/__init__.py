"""The ``forecast`` command: a thin shell over the library (see ``forecast --help``).

``app`` lives in ``_app``; the consoles and the printers that several commands share in
``_console``; each command group in its own module, imported here (in the order ``--help``
lists them) so that it registers. Nothing in the library imports this package.
"""

from forecast.cli._app import app

# each import registers its commands on ``app``
from forecast.cli import _data  # noqa: E402,F401  ingest, info
from forecast.cli import _models  # noqa: E402,F401  backtest, train, predict
from forecast.cli import _triggers  # noqa: E402,F401  prioritize
from forecast.cli import _scenario  # noqa: E402,F401  scenario
from forecast.cli import _card  # noqa: E402,F401  card
from forecast.cli import _audit  # noqa: E402,F401  audit
from forecast.cli import _review  # noqa: E402,F401  review
from forecast.cli import _release  # noqa: E402,F401  release
from forecast.cli import _report  # noqa: E402,F401  report, report-check
from forecast.cli import _trigger_card  # noqa: E402,F401  trigger-card
from forecast.cli import _export  # noqa: E402,F401  export
from forecast.cli import _demo  # noqa: E402,F401  demo

__all__ = ["app"]
