"""flowml's Dask executor: ``flowml run --executor dask --scheduler tcp://HOST:8786``.

:mod:`flowml_dask.executor` is the client side (what ``flowml run`` loads through the
``flowml.executors`` entry point), :mod:`flowml_dask.project` packs the project's files once
per run, and :mod:`flowml_dask.worker` is what a Dask worker runs for one step.
"""
