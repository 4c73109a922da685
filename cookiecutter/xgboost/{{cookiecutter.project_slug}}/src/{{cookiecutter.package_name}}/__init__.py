"""{{ cookiecutter.description }}"""

MODEL_FILE = "model.ubj"
"""The booster in XGBoost's own binary format, written by ``train`` and read by the predictor."""

META_FILE = "model.json"
"""Feature names and the decision threshold, beside the booster."""
