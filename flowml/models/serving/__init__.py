"""The scoring server: MLflow's ``/invocations`` protocol over a raw ASGI app, run by uvicorn in
worker processes that roll over to a new model version without dropping a request.

``payload`` reads request bodies, ``fastpath`` scores plain rows of floats without pandas,
``replies`` writes answers, ``served`` holds one loaded version, ``app`` is the ASGI app,
``watch`` resolves the model URI again, and ``workers`` runs and supervises the processes.
Nothing here is imported by ``import flowml``.
"""
