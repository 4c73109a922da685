"""{{ cookiecutter.description }}"""

WEIGHTS_FILE = "model.pt"
"""The network's weights (a ``state_dict``), written by ``train`` on the primary host."""

MODEL_FILE = "model.json"
"""What the predictor needs besides the weights: features, classes, layer sizes, scaling."""
