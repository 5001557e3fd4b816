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
    """

    n_origins: int = 12
    step: int = 1
    calibration_origins: int = 12
    min_train: int = 24
    refit_every: int = 1

    def __post_init__(self):
        for name in ("n_origins", "step", "min_train", "refit_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ForecastError(f"RollingOrigin.{name} must be a positive integer, got {value!r}")
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
