"""Model directories in MLflow's MLmodel format: flavors, signatures, pyfunc loading, serving, batch scoring."""
