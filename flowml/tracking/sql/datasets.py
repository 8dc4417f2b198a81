"""The datasets runs read (MLflow's ``log_input``), in the SQL store: a dataset is stored once
per experiment (by name and digest) and linked to each run that read it, with the link's tags
(``mlflow.data.context``...). A mixin of :class:`SqlStore`."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from flowml.errors import TrackingError
from flowml.tracking.entities import Dataset, DatasetInput, LifecycleStage
from flowml.tracking.sql import tables as t
from flowml.tracking.sql.database import writing


class DatasetStore:
    """Needs ``self.engine`` (from :class:`SqlStore`)."""

    def log_inputs(self, run_id: str, inputs: list[DatasetInput]) -> None:
        """Record that run ``run_id`` read ``inputs``; logging the same dataset again adds nothing."""
        from flowml.tracking.sql.store import _dialect_insert

        for item in inputs:
            for value in (item.dataset.name, item.dataset.digest, item.dataset.source_type, item.dataset.source):
                if not isinstance(value, str) or not value:
                    raise TrackingError("a dataset needs a name, a digest, a source_type and a source")
        with writing(self.engine) as conn:
            row = conn.execute(select(t.runs.c.experiment_id, t.runs.c.lifecycle_stage)
                               .where(t.runs.c.run_id == run_id)).first()
            if row is None:
                raise TrackingError(f"no run with id '{run_id}'", "RESOURCE_DOES_NOT_EXIST")
            if row[1] != LifecycleStage.ACTIVE:
                raise TrackingError(f"run '{run_id}' is deleted; restore it to change it", "INVALID_STATE")
            for item in inputs:
                ds = item.dataset
                conn.execute(_dialect_insert(conn, t.datasets).values(
                    dataset_uuid=uuid.uuid4().hex, experiment_id=row[0], name=ds.name, digest=ds.digest,
                    source_type=ds.source_type, source=ds.source, schema=ds.schema, profile=ds.profile,
                ).on_conflict_do_nothing(index_elements=["experiment_id", "name", "digest"]))
                dataset_uuid = conn.execute(select(t.datasets.c.dataset_uuid).where(
                    t.datasets.c.experiment_id == row[0], t.datasets.c.name == ds.name,
                    t.datasets.c.digest == ds.digest)).scalar_one()
                input_uuid = uuid.uuid4().hex
                conn.execute(_dialect_insert(conn, t.inputs).values(
                    input_uuid=input_uuid, dataset_uuid=dataset_uuid, run_id=run_id,
                ).on_conflict_do_nothing(index_elements=["dataset_uuid", "run_id"]))
                stored = conn.execute(select(t.inputs.c.input_uuid).where(
                    t.inputs.c.dataset_uuid == dataset_uuid, t.inputs.c.run_id == run_id)).scalar_one()
                if stored == input_uuid and item.tags:  # a new link: an existing one keeps its tags
                    conn.execute(t.input_tags.insert(), [{"input_uuid": input_uuid, "key": k, "value": str(v)}
                                                         for k, v in item.tags.items()])

    def _attach_inputs(self, conn, found: dict, run_ids: list[str]) -> None:
        """Fill ``run.inputs`` of the runs in ``found`` (by id) for ``run_ids``."""
        d, i = t.datasets.c, t.inputs.c
        rows = conn.execute(select(i.input_uuid, i.run_id, d.name, d.digest, d.source_type, d.source, d.schema,
                                   d.profile).join(t.datasets, d.dataset_uuid == i.dataset_uuid)
                            .where(i.run_id.in_(run_ids)).order_by(i.run_id, d.name)).all()
        if not rows:
            return
        tags: dict[str, dict[str, str]] = {}
        for input_uuid, key, value in conn.execute(select(t.input_tags).where(
                t.input_tags.c.input_uuid.in_([r[0] for r in rows]))):
            tags.setdefault(input_uuid, {})[key] = value
        for input_uuid, run_id, *dataset in rows:
            found[run_id].inputs.append(DatasetInput(Dataset(*dataset), tags.get(input_uuid, {})))
