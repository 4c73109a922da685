"""mldock-aws: the image ``mldock build`` made, run on AWS unchanged (ECR, SageMaker)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
