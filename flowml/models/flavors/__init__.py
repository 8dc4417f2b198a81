"""Flavors: one module per library, each with ``save_model``, ``log_model``, ``load_model`` and
the ``_load_pyfunc`` that :func:`flowml.models.pyfunc.load_model` calls. The library itself is
imported inside the functions, so importing a flavor module costs nothing."""
