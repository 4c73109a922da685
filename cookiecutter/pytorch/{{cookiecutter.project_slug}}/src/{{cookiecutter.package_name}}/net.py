"""The network, defined once: ``train`` builds it to fit, ``Predictor.load`` to serve."""

from __future__ import annotations

from torch import nn


def build_net(features: int, hidden: int, classes: int) -> nn.Module:
    """A small multilayer perceptron: ``features`` inputs, one hidden layer, ``classes`` logits."""
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes))
