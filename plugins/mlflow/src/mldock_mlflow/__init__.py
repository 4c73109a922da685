"""mldock-mlflow: runs tracked on an MLflow tracking server (``[tracking] uri = "mlflow+http://…"``)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
