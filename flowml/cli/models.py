"""`flowml models`: serve a model over MLflow's scoring protocol, score files in batch."""

from __future__ import annotations

import click

from flowml.cli.group import cli
from flowml.cli.options import TRACKING_URI

MODEL_URI = click.option("-m", "--model-uri", "model_uri", required=True, metavar="URI",
                         help="The model: a path, runs:/<run>/<path>, models:/<name>/<version>, "
                              "models:/<name>@<alias> or models:/<model_id>.")


@cli.group()
def models() -> None:
    """Serve, score and package MLflow-format models."""


@models.command()
@MODEL_URI
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: every interface).")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=5001, show_default=True)
@click.option("-w", "--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes, each with its own copy of the model.")
@click.option("--watch", type=click.FloatRange(min=0.1), is_flag=False, flag_value=10.0, default=None,
              metavar="[SECONDS]", help="Re-resolve a models:/<name>@<alias> URI every SECONDS (default 10) "
                                        "and roll over to the version it names. SIGHUP re-resolves at once.")
@TRACKING_URI
def serve(model_uri, host, port, workers, watch, tracking_uri):
    """Serve a model: POST /invocations (JSON, CSV, Parquet), GET /ping, /health, /version."""
    from flowml.models.serving.workers import serve as run

    run(model_uri, host, port, workers, watch, tracking_uri, echo=lambda line: click.echo(line, err=True))


@models.command()
@MODEL_URI
@click.option("-i", "--input-path", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Rows to score: CSV, Parquet or JSON lines.")
@click.option("-o", "--output-path", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where the predictions go, in the input's format (written whole or not at all).")
@click.option("-t", "--content-type", type=click.Choice(["csv", "json", "parquet"]), default=None,
              help="The input's format [default: from its extension; json: JSON lines, or one JSON "
                   "document shaped like an /invocations request].")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Rows read, scored and written at a time (memory is bounded by this, not the file).")
@TRACKING_URI
def predict(model_uri, input_path, output_path, content_type, chunk_rows, tracking_uri):
    """Score a file in chunks: each chunk's predictions are appended to the output."""
    from flowml.models.batch import predict_file

    rows = predict_file(model_uri, input_path, output_path, content_type, chunk_rows, tracking_uri)
    click.echo(f"scored {rows} rows into {output_path}", err=True)


@models.command("build-docker")
@MODEL_URI
@click.option("-n", "--name", "tag", required=True, metavar="NAME[:TAG]", help="The image to build, e.g. wine:3.")
@click.option("--base-image", metavar="IMAGE", help="Python base image, running this Python's version "
              "[default: python:MAJOR.MINOR-slim-bookworm, pulled if missing].")
@click.option("--dockerfile-only", metavar="DIR", type=click.Path(file_okay=False),
              help="Write the Dockerfile and its context (model, wheels) into DIR; build nothing.")
@TRACKING_URI
def build_docker(model_uri, tag, base_image, dockerfile_only, tracking_uri):
    """Build an image serving the model on port 8080, with no network: flowml and the model's
    requirements are installed from wheels built here (needs the flowml-docker plugin)."""
    from flowml.deployments.images import load_image_builder

    builder = load_image_builder("docker")
    if dockerfile_only:
        path = builder.write_context(model_uri, dockerfile_only, base_image=base_image, tracking_uri=tracking_uri)
        click.echo(f"wrote {path}; build it with: docker build -t {tag} {dockerfile_only}", err=True)
        return
    image = builder.build(model_uri, tag, base_image=base_image, tracking_uri=tracking_uri)
    click.echo(f"built {tag} ({image}); run it with: docker run --network host {tag}", err=True)
