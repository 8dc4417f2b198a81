"""flowml: ML pipelines that skip what did not change, with every step a tracked run.

Importing ``flowml`` stays cheap on purpose: the CLI's start-up time is a feature, so the
tracking API (``flowml.log_metric`` ...) is loaded on first use, and every heavy dependency
is imported inside the function that needs it.
"""

from flowml.version import __version__

# The tracking API, MLflow's names: resolved from flowml.tracking.fluent on first access.
_FLUENT = (
    "ActiveRun", "active_run", "delete_tag", "end_run", "get_artifact_uri", "get_experiment",
    "get_experiment_by_name", "get_metric_history", "get_run", "get_tracking_uri", "last_active_run", "log_artifact",
    "log_artifacts", "log_batch", "log_dict", "log_figure", "log_metric", "log_metrics", "log_param", "log_params",
    "log_text", "search_experiments", "search_runs", "set_experiment", "set_tag", "set_tags", "set_tracking_uri",
    "start_run",
)
__all__ = [*_FLUENT, "FlowmlClient", "__version__"]


def __getattr__(name: str):
    if name in _FLUENT:
        from flowml.tracking import fluent

        return getattr(fluent, name)
    if name == "FlowmlClient":
        from flowml.tracking.client import FlowmlClient

        return FlowmlClient
    raise AttributeError(f"module 'flowml' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
