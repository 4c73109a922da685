"""mldock-azure: the image ``mldock build`` made, run on Azure unchanged (Blob Storage, ACR,
Azure ML)."""

__version__ = "0.2.0"

__all__ = ["__version__"]
