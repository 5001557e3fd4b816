"""The pipeline's steps as library calls: ingest raw files, train a model, assess triggers.

Each step joins the lower layers (io, cube, features, models, backtest, triggers, fairness)
into one call that the CLI, the MLproject entry points and the notebooks share::

    from forecast.pipeline import ingest, train
    result = ingest(["dtm.csv"], "dtm", areas="adm2.geojson")
    trained = train(result.cube, spec, triggers=triggers)
"""

from forecast.pipeline._assess import assess
from forecast.pipeline._ingest import Ingested, ingest
from forecast.pipeline._train import TrainedModel, train

__all__ = ["ingest", "Ingested", "train", "TrainedModel", "assess"]
