"""``python -m forecast.cli``: the same app as the ``forecast`` command."""

from forecast.cli import app

app()
