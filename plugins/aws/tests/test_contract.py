"""mldock's deployer contract against SageMaker on moto, with images pushed to a real registry.

The contract deploys its echo image, built locally: core's push path (:func:`mldock.publish.publish`
with the deployer's registry_target, as every mldock command does) pushes it (ECR token from moto,
registry on 127.0.0.1) before the deployer sees it, and the deployer packs the contract's model
folder into model.tar.gz in S3, as for any locally trained run. moto runs no container, so
predictions come from moto's queue of canned answers; it reports every training job Completed and
refuses UpdateEndpoint: the two tests that need otherwise are declared expected failures with the
reason, and their subjects are checked in test_training.py and test_serving.py instead. A moto
server of its own keeps the answer queue apart from other tests. The deployer is built through the
``sagemaker`` record mldock registers, whose capabilities give the contract's flags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mldock.errors import BackendUnavailableError
from mldock.interfaces import Deployer, DeployRequest, Prediction, TrainingJob
from mldock.local.build import DockerBuilder
from mldock.publish import publish
from mldock.records import FactoryContext
from mldock.testing import DeployerContract, expected_failure, registered_record

ANSWER = {"echo": "answered by moto's queue"}


@pytest.fixture(scope="module")
def contract_moto(start_moto):
    import boto3

    server = start_moto()
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket="contract")
    return server


class TestSageMakerDeployer(DeployerContract):
    backend_name = "sagemaker (moto)"
    record = registered_record("deployer", "sagemaker")

    @pytest.fixture
    def deployer(self, contract_moto, registry, options, shapes, pushed_repos, tmp_path):
        """Built by the record's factory, as ``mldock deploy`` builds it from
        ``[deploy.sagemaker]`` and the project's facts; its requests are then checked against
        SageMaker's shapes, and it polls every 10 ms (moto ends every job at once)."""
        from mldock_aws.deployer import SageMakerDeployer

        opts = options.model_copy(update={"endpoint_url": contract_moto.url,
                                          "ecr_registry": registry.host})
        built = self.record.build(FactoryContext(options=opts, project="contract",
                                                 project_dir=tmp_path,
                                                 storage_uri="s3://contract/p"))
        assert isinstance(built, SageMakerDeployer)
        built.clients.session.events.register("provide-client-params", shapes)
        for part in (built.training, built.endpoints, built.batches):
            part.poll_s = 0.01
        pushed_repos.append("mldock-contract-echo")
        self.sagemaker = built
        return built

    def pushed(self, image: str) -> str:
        """``image`` pushed as the mldock commands push it before calling a deployer."""
        target = self.sagemaker.registry_target(image)
        return publish(image, target, DockerBuilder()).pinned

    @pytest.fixture(autouse=True)
    def _answers(self, contract_moto):
        """One canned answer per test that may predict (moto has no container to ask)."""
        contract_moto.queue_endpoint_results({"Body": json.dumps(ANSWER),
                                              "ContentType": "application/json",
                                              "InvokedProductionVariant": "AllTraffic",
                                              "CustomAttributes": ""})

    def deploy_request(self, name: str, image: str, model_uri: str) -> DeployRequest:
        return DeployRequest(name=name, image=self.pushed(image), model_uri=model_uri,
                             run_id="contract-run", options={"project": "contract"})

    def training_job(self, image: str, output_dir: Path, environment: dict[str, str]
                     ) -> TrainingJob:
        job = super().training_job(image, output_dir, environment)
        return TrainingJob(run_id=job.run_id, image=self.pushed(image), environment=environment,
                           inputs={"train": "s3://contract/p/data/" + "0" * 64},
                           output_uri=f"s3://contract/p/runs/{job.run_id}/model")

    def check_prediction(self, payload: Any, prediction: Prediction) -> None:
        assert prediction.status == 200, prediction
        assert json.loads(prediction.body) == ANSWER

    @expected_failure("moto 5.x answers UpdateEndpoint with HTTP 500 (not implemented): the"
                      " update request and the clean-up after a refused update are checked in"
                      " test_serving.py::test_redeploy_updates_in_place",
                      raises=BackendUnavailableError)
    def test_redeploy_updates_in_place(self, deployer: Deployer, endpoint: str,
                                       serving_image: str, model_uri: str) -> None:
        super().test_redeploy_updates_in_place(deployer, endpoint, serving_image, model_uri)

    @expected_failure("moto reports every training job Completed (it runs no container): Failed"
                      " and Stopped jobs are checked in test_training.py on SageMaker's answers",
                      raises=AssertionError)
    def test_training_failure_is_reported(self, deployer: Deployer, serving_image: str,
                                          tmp_path: Path) -> None:
        super().test_training_failure_is_reported(deployer, serving_image, tmp_path)
