"""The rolling-origin split, apart from the runner (a frozen value that checks itself)."""

from __future__ import annotations

from dataclasses import dataclass

from forecast.errors import ForecastError

__all__ = ["RollingOrigin"]


@dataclass(frozen=True)
class RollingOrigin:
    """Rolling origins with an expanding window.

    The last origin leaves room for the longest horizon inside the data; earlier origins step
    back by ``step`` months. The first ``calibration_origins`` are forecast but not scored:
    their errors calibrate the prediction intervals of later origins (conformal), so that the
    scored origins' intervals use only errors whose outcomes were known at their origin.

    Parameters
    ----------
    n_origins : int, default 12
        Scored origins.
    step : int, default 1
        Months between origins.
    calibration_origins : int, default 12
        Extra, earlier origins used only to calibrate intervals.
    min_train : int, default 24
        Months of history the first origin needs.
    refit_every : int, default 1
        Refit models every this many origins (in between, the last fit forecasts from the new
        origin's data).
    calibration_refit_every : int, optional
        The same for the calibration origins alone (default: ``refit_every``). Their forecasts
        only supply the errors that set the intervals, so refitting them less often saves fits
        without touching a scored point forecast: 2 fits half of them, a quarter of a default
        backtest's fits. The intervals then come from the errors of fits up to this many months
        older than the scored forecasts', so they move a little (the Somalia sample with 2: 80%
        coverage within 1 point, ``benchmarks/README.md``). A spec's own ``refit_every`` holds
        for every origin.
    """

    n_origins: int = 12
    step: int = 1
    calibration_origins: int = 12
    min_train: int = 24
    refit_every: int = 1
    calibration_refit_every: int | None = None

    def __post_init__(self):
        for name in ("n_origins", "step", "min_train", "refit_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ForecastError(f"RollingOrigin.{name} must be a positive integer, got {value!r}")
        every = self.calibration_refit_every
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise ForecastError(f"RollingOrigin.calibration_refit_every must be a positive integer, got {every!r}")
        if not isinstance(self.calibration_origins, int) or self.calibration_origins < 0:
            raise ForecastError("RollingOrigin.calibration_origins must be a non-negative integer, "
                                f"got {self.calibration_origins!r}")

    def months_needed(self, max_horizon: int) -> int:
        return self.min_train + self.step * (self.n_origins + self.calibration_origins - 1) + max_horizon

    def origins(self, n_times: int, max_horizon: int) -> tuple[list[int], list[int]]:
        """Month indices of the calibration origins and of the scored origins, ascending."""
        if n_times < self.months_needed(max_horizon):
            raise ForecastError(
                f"the backtest needs {self.months_needed(max_horizon)} months (min_train "
                f"{self.min_train} + {self.n_origins} scored and {self.calibration_origins} calibration "
                f"origins every {self.step} month(s) + horizon {max_horizon}); the cube has {n_times}. "
                "Use fewer origins, a smaller step or a shorter min_train.")
        last = n_times - 1 - max_horizon
        total = self.n_origins + self.calibration_origins
        idx = [last - self.step * (total - 1 - i) for i in range(total)]
        return idx[: self.calibration_origins], idx[self.calibration_origins:]

    def blocks(self, n_times: int, max_horizon: int, refit_every: int | None = None) -> list[list[int]]:
        """The origins (month indices, ascending) grouped by the fit that serves them: a model
        fits at each block's first origin and forecasts its later ones from that fit.
        ``refit_every``: a spec's own, which holds for every origin."""
        calibration, scored = self.origins(n_times, max_horizon)
        if refit_every or self.calibration_refit_every is None:
            every, origins = refit_every or self.refit_every, calibration + scored
            return [origins[i:i + every] for i in range(0, len(origins), every)]
        # the calibration origins on their own cycle: the first scored origin always fits afresh
        every = self.calibration_refit_every
        out = [calibration[i:i + every] for i in range(0, len(calibration), every)]
        return out + [scored[i:i + self.refit_every] for i in range(0, len(scored), self.refit_every)]
