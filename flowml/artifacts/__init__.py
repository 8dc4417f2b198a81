"""Artifact repositories: where a run's files live. ``local`` is a folder on this machine;
``http`` is a tracking server's artifact proxy (``mlflow-artifacts:/...``). :func:`repository`
picks one by URI."""

from __future__ import annotations

from flowml.errors import TrackingError

PROXY_ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"


def repository(uri: str, tracking_uri: str | None = None):
    """The artifact repository for a run's ``artifact_uri``: a local folder (a path or
    ``file://``), or the artifact proxy of a tracking server for ``mlflow-artifacts:/...`` (the
    server named by ``tracking_uri``, else by ``FLOWML_TRACKING_URI``), for
    ``mlflow-artifacts://host:port/...``, and for ``http(s)://host/api/2.0/mlflow-artifacts/artifacts/...``.

    Raises:
        TrackingError: for a scheme this flowml cannot read or write (``s3://`` ...).
    """
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme == "mlflow-artifacts" or (scheme in ("http", "https") and PROXY_ENDPOINT in uri):
        from flowml.artifacts.http import HttpArtifactRepository

        return HttpArtifactRepository(uri, tracking_uri)
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in ("", "file"):
        raise TrackingError(f"artifact location '{uri}': the '{scheme}' scheme is not supported "
                            "(local folders, file:// URIs and a tracking server's mlflow-artifacts:/ are)")
    from flowml.artifacts.local import LocalArtifactRepository

    return LocalArtifactRepository(uri)
