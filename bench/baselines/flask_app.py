"""What a Python user writes by hand to serve an estimator with Flask: the baseline that the
gateway's Python path is measured against (bench/peers.py). MODEL_SKOPS names the artefact."""

from __future__ import annotations

import os

import pandas as pd
import skops.io as sio
from flask import Flask, jsonify, request

_path = os.environ["MODEL_SKOPS"]
model = sio.load(_path, trusted=sio.get_untrusted_types(file=_path))
app = Flask(__name__)


@app.post("/predict")
def predict():  # type: ignore[no-untyped-def]
    frame = pd.DataFrame.from_records(request.get_json())
    return jsonify(predictions=model.predict(frame).tolist())
