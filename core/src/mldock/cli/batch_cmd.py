"""``mldock batch``: batch predictions over stored data on the configured target."""

from __future__ import annotations

import typer

from mldock.cli.output import info, print_json

app = typer.Typer(help="Run a batch prediction job over stored data.")


@app.command()
def batch(
    input_uri: str = typer.Option(..., "--input", "-i", help="Storage URI of the input data."),
    output_uri: str = typer.Option(..., "--output", "-o", help="Storage URI for the predictions."),
    run: str | None = typer.Option(None, "--run", "-r", metavar="RUN_ID",
                                      help="Run whose model to use (default: latest finished)."),
    content_type: str = typer.Option("application/json", "--content-type",
                                     help="Content type of the input records."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run the model of a run over every record under --input; predictions go to --output."""
    from mldock.cli.deploy_cmd import image_for_target, local_model, run_model
    from mldock.errors import MldockError
    from mldock.interfaces import BatchRequest
    from mldock.session import Session

    session = Session.open()
    if "batch" not in session.deployer_record.capabilities:
        raise MldockError(f"deployer {session.deployer_name!r} does not run batch jobs",
                          hint="use a target with batch support, e.g. --env aws (SageMaker)",
                          exit_code=2)
    chosen, artifact, image = run_model(session, run)
    image = image_for_target(session, chosen, image)
    result = session.deployer.batch(
        BatchRequest(run_id=chosen.id, image=image, model_uri=artifact.uri, input_uri=input_uri,
                     output_uri=output_uri, content_type=content_type,
                     options={"model_dir": local_model(session, chosen.id, artifact)}),
        progress=info)
    if json_:
        print_json(result.__dict__)
    else:
        info(f"batch job {result.job_id} {result.status}")
        print(result.output_uri)
    if result.status != "finished":
        raise MldockError(f"batch job {result.job_id} {result.status}: {result.failure_reason}")
