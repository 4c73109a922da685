"""mldock-s3: the ``s3://`` artifact store and data channels for mldock (AWS S3 and compatibles)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
