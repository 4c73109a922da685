"""mldock-gcp: the image ``mldock build`` made, run on Google Cloud unchanged (GCS, Artifact
Registry, Vertex AI)."""

__version__ = "0.2.0"

__all__ = ["__version__"]
