"""{{ cookiecutter.description }}"""

MODEL_FILE = "model.joblib"
"""The file ``train`` writes into the model directory and ``Predictor.load`` reads."""
