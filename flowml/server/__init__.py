"""The tracking server: MLflow's REST API (so MLflow's own client works against it), the
artifact proxy, and flowml's routes for the shared cache index. FastAPI on uvicorn; the
store behind it is the SQL store. ``create_app`` builds it; ``flowml server`` runs it."""
