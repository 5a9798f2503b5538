"""The baseline for bench_serve.py: the least a FastAPI service can do with the same boosters.

Loads the four boosters of one registry version (``EFIMERO_BENCH_VERSION_DIR``) straight
from ``models/*.ubj`` and the scaler from ``preprocessing.json``. ``POST /predict`` takes
``{"features": [19 floats]}`` in the version's feature order, scales them, builds one
``xgb.DMatrix`` shared by the four ``booster.predict`` calls and returns the raw outputs.
No feature computation, no labels, no CSS, no logging, no metrics. The endpoint is
``async def``, as efimero's is, so both run the prediction on the event loop.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xgboost as xgb
from fastapi import FastAPI
from pydantic import BaseModel

_version = Path(os.environ["EFIMERO_BENCH_VERSION_DIR"])
_scaler = json.loads((_version / "preprocessing.json").read_text())
_mean = np.asarray(_scaler["mean"], dtype=float)
_scale = np.asarray(_scaler["scale"], dtype=float)
_boosters: dict[str, xgb.Booster] = {}
for _path in sorted((_version / "models").glob("*.ubj")):
    _boosters[_path.stem] = booster = xgb.Booster(model_file=str(_path))
    booster.set_param({"nthread": 1})

app = FastAPI(title="minimal xgboost service")


class Features(BaseModel):
    features: list[float]


@app.post("/predict")
async def predict(body: Features) -> dict[str, list[list[float]]]:
    row = ((np.asarray(body.features, dtype=float) - _mean) / _scale).reshape(1, -1)
    matrix = xgb.DMatrix(row, nthread=1)
    return {name: booster.predict(matrix).reshape(1, -1).tolist() for name, booster in _boosters.items()}
