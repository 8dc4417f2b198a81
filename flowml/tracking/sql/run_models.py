"""Links from runs to logged models, in the SQL store: the models a run read (MLflow 3's model
inputs, sent with ``log-inputs``) and the models it made (``runs/outputs``, with the training
step). A mixin of :class:`SqlStore`; a link logged twice is kept once."""

from __future__ import annotations

from sqlalchemy import select

from flowml.errors import TrackingError
from flowml.tracking.entities import ModelOutput
from flowml.tracking.sql import tables as t
from flowml.tracking.sql.database import writing

INPUT, OUTPUT = "input", "output"


class RunModelStore:
    """Needs ``self.engine`` and ``self._active_run`` (from :class:`SqlStore`)."""

    def log_model_inputs(self, run_id: str, model_ids: list[str]) -> None:
        """Record that run ``run_id`` read the logged models ``model_ids``."""
        self._link(run_id, [(m, INPUT, 0) for m in model_ids])

    def log_outputs(self, run_id: str, outputs: list[ModelOutput]) -> None:
        """Record that run ``run_id`` made the logged models in ``outputs``."""
        self._link(run_id, [(o.model_id, OUTPUT, o.step) for o in outputs])

    def _link(self, run_id: str, links: list[tuple[str, str, int]]) -> None:
        from flowml.tracking.sql.store import _dialect_insert

        with writing(self.engine) as conn:
            self._active_run(conn, run_id)
            model_ids = sorted({m for m, _, _ in links})
            known = set(conn.execute(select(t.logged_models.c.model_id)
                                     .where(t.logged_models.c.model_id.in_(model_ids))).scalars())
            missing = [m for m in model_ids if m not in known]
            if missing:
                raise TrackingError(f"no logged model with id '{missing[0]}'", "RESOURCE_DOES_NOT_EXIST")
            for model_id, direction, step in links:
                conn.execute(_dialect_insert(conn, t.run_models).values(
                    run_id=run_id, model_id=model_id, direction=direction, step=step,
                ).on_conflict_do_nothing())

    def _attach_models(self, conn, found: dict, run_ids: list[str]) -> None:
        """Fill ``model_inputs`` and ``model_outputs`` of the runs in ``found`` (by id) for ``run_ids``."""
        rm = t.run_models.c
        for run_id, model_id, direction, step in conn.execute(
                select(rm.run_id, rm.model_id, rm.direction, rm.step).where(rm.run_id.in_(run_ids))
                .order_by(rm.run_id, rm.step, rm.model_id)):
            if direction == INPUT:
                found[run_id].model_inputs.append(model_id)
            else:
                found[run_id].model_outputs.append(ModelOutput(model_id, step))
