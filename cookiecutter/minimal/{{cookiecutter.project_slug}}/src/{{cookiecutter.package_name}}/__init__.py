"""{{ cookiecutter.description }}"""

MODEL_FILE = "model.json"
"""The file ``train`` writes into the model directory and ``Predictor.load`` reads."""
