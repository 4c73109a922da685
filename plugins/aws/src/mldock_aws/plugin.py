"""Entry point ``aws`` (group ``mldock``): registers the ``sagemaker`` deployer.

Imports only mldock and the standard library: this module is loaded by every ``mldock`` command,
``--help`` included, and boto3 costs ~0.15 s to import. The factory imports the implementation (and
with it boto3) only when a command actually needs the deployer.
"""

from __future__ import annotations

from typing import Any

from mldock.markers import hookimpl
from mldock.records import DeployerRecord, FactoryContext, TuningSupport

MLDOCK_PLUGIN_API = 1  # the mldock plugin API this module is built for

EXAMPLE = """\
# Amazon SageMaker. Needs the AWS plugins: pip install mldock-aws mldock-s3
# (mldock-aws: SageMaker jobs and endpoints, ECR; mldock-s3: the s3:// artifact store)
# Fill in the <placeholders>, then run: mldock --env aws train / deploy
# Credentials come from your AWS profile or environment, never from this file.

[env.aws.deploy]
deployer = "sagemaker"

[env.aws.deploy.sagemaker]
region = "eu-west-1"
role_arn = "arn:aws:iam::<account>:role/<name>"   # execution role SageMaker assumes
instance_type = "ml.m5.large"                     # training instances
serve_instance_type = "ml.m5.large"               # endpoint and batch transform instances
metrics = ["accuracy"]                            # charted in the SageMaker console

[env.aws.storage]
uri = "s3://<bucket>/{project}"
"""
"""``mldock config example sagemaker``; ``mldock init`` writes it, commented, as ``[env.aws]``."""

CAPABILITIES = frozenset({"training", "serving", "batch", "distributed", "spot", "registry",
                          "tuning"})

TUNING = TuningSupport(
    strategies=frozenset({"bayesian", "random", "grid", "hyperband"}),
    early_stopping=frozenset({"none", "median", "hyperband"}),
    log_scale=True, steps=False, categorical_numbers=True, max_trials=None,
    max_parallel_trials=100, options_model="mldock_aws.config:SageMakerTuneOptions")
"""SageMaker's tuner (:mod:`mldock_aws.tuning`): every strategy; early stopping is SageMaker's
``Auto`` (median rule) or Hyperband's own; no stepped ranges (list the values instead);
categoricals travel as strings and are decoded back by the runtime. Trial counts are account
quotas, not API limits, except 100 trials at once."""


def make_deployer(context: FactoryContext) -> Any:
    """Build the SageMaker deployer from ``[deploy.sagemaker]`` and the project's config."""
    from mldock_aws.deployer import SageMakerDeployer

    return SageMakerDeployer.from_context(context)


@hookimpl
def mldock_deployers() -> list[DeployerRecord]:
    return [DeployerRecord(
        name="sagemaker",
        summary="AWS SageMaker: training jobs, endpoints and batch transform; images pushed to ECR",
        factory=make_deployer, config_model="mldock_aws.config:SageMakerOptions",
        capabilities=CAPABILITIES, example=EXAMPLE, tuning=TUNING)]
