"""Use cases served beside the CSS model: each one's production version behind a request schema of its own.

:func:`resolve_usecases` reads, for each key, the production entry of the use-case registry
(:class:`efimero.usecases.UseCaseRegistry`) and the features that version was trained on, and
builds its request body with pydantic's ``create_model``: one field per feature, named as the
column (``"mean radius"``), a finite number within the use case's range (declared in its YAML
or inferred from its data) or one of its categories, every field required, no other field
allowed. The model is ``<Key>PredictRequest`` (``breast_cancer`` → ``BreastCancerPredictRequest``),
so OpenAPI documents each use case's own body and FastAPI refuses a bad one with a 422 whose
``loc`` names the field. :meth:`ServedUseCase.load` then verifies that version's checksums and
loads its preprocessing and estimator; the app calls it in its lifespan.

The version is the one in production when the service starts, pinned by its directory: a use
case promoted later is served after a restart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from efimero.errors import RegistryFormatError, VersionNotFoundError, format_list

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from efimero.estimators import Estimator
    from efimero.usecases import UseCaseSpec

MAX_TEXT_CHARS = 200
"""Longest value of a categorical feature whose categories were too many to list (any text is accepted)."""

_NUMBER_BYTES = 32
"""Room for one number in a request body: the longest float JSON writes is 24 characters."""

_FIELD_SLACK_BYTES = 16
"""Room per field for the colon, the comma and indentation, in the body limits."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RowPrediction(BaseModel):
    """One row's prediction."""

    prediction: bool | int | float | str | dict[str, float] = Field(
        description="The class label (binary, multiclass), the value (regression), {target: value} (multi_output), "
        "or the cluster id, -1 for noise (clustering)"
    )
    probabilities: dict[str, float] | None = Field(
        None, description="Each class label's probability, summing to 1 (classifiers only; null otherwise)"
    )


class _Served(BaseModel):
    use_case: str = Field(description="The use case's key")
    version: str = Field(description="The registry's semantic version served, e.g. 1.0.0")
    model_id: str = Field(description="The registry entry's model_id, e.g. UC-HEALTH-breast_cancer-v1.0.0")
    algorithm: str = Field(description="The algorithm of the served model, e.g. logistic_regression")
    task: str = Field(description="binary, multiclass, regression, multi_output or clustering")


class UseCasePredictResponse(RowPrediction, _Served):
    """The prediction of one row, and the version that made it."""


class UseCaseBatchPredictResponse(_Served):
    """One prediction per row, in the order of the rows."""

    predictions: list[RowPrediction]


class UseCaseInfo(BaseModel):
    """A served use case: its production version, the model's test metrics and where to call it."""

    key: str
    name: str
    department: str
    task: str
    version: str
    directory: str = Field(description="The version's folder in the use-case registry (v_YYYYMMDD_HHMMSS)")
    model_id: str
    algorithm: str
    promoted_at: str | None = None
    primary_metric: str
    metrics: dict[str, Any] = Field(description="The served model's metrics on the held-out test split")
    features: list[str] = Field(description="The request's fields, in the order the model reads them")
    predict: str = Field(description="The route of one prediction")
    predict_batch: str = Field(description="The route of a batch of rows")
    request_schema: str = Field(description="The name of the request body's schema in /openapi.json")
    max_batch: int = Field(description="Most rows per batch request")


class UseCaseList(BaseModel):
    usecases: list[UseCaseInfo]


@dataclass
class ServedUseCase:
    """One use case's production version: its entry and request models now, its model once :meth:`load` ran."""

    root: Path
    spec: UseCaseSpec
    entry: dict[str, Any]
    request_model: type[BaseModel]
    batch_model: type[BaseModel]
    max_batch: int
    preprocessor: ColumnTransformer | None = field(default=None, repr=False)
    estimator: Estimator | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def path(self) -> str:
        return f"/v1/usecases/{self.key}/predict"

    @property
    def batch_path(self) -> str:
        return f"{self.path}/batch"

    @property
    def loaded(self) -> bool:
        return self.estimator is not None

    def row_bytes(self) -> int:
        """An upper bound on one row's JSON: what the body limits leave room for."""
        size = 2
        for feature in self.spec.features or []:
            if feature.kind == "numeric":
                value = _NUMBER_BYTES
            elif feature.categories:
                value = max(len(json.dumps(category)) for category in feature.categories)
            else:
                value = 2 + 6 * MAX_TEXT_CHARS  # every character escaped as \uXXXX
            size += len(json.dumps(feature.name)) + value + _FIELD_SLACK_BYTES
        return size

    def body_limits(self, max_body_bytes: int) -> dict[str, int]:
        """Body limits of the two routes: a row (at least the service's limit) and ``max_batch`` rows."""
        row = self.row_bytes()
        return {self.path: max(max_body_bytes, row + 1024), self.batch_path: self.max_batch * row + 1024}

    def load(self) -> None:
        """Verify the version's checksums and load its preprocessing and estimator.

        Raises:
            ModelIntegrityError: a file of the version is missing or altered (named).
            UntrustedModelError: a saved model names a type outside the allow-list.
        """
        from efimero.usecases import UseCaseRegistry
        from efimero.usecases._prep import load_preprocessor

        loaded = UseCaseRegistry(self.root).load(self.key, self.entry["directory"])
        self.preprocessor = load_preprocessor(loaded.directory)
        self.estimator = loaded.estimator

    def info(self) -> UseCaseInfo:
        entry = self.entry
        return UseCaseInfo(
            key=self.key, name=self.spec.name or self.key, department=self.spec.department, task=self.spec.task.value,
            version=entry["version"], directory=entry["directory"], model_id=entry["model_id"],
            algorithm=entry["algorithm"], promoted_at=entry.get("promoted_at"), primary_metric=self.spec.metric,
            metrics=entry.get("metrics", {}), features=[f.name for f in self.spec.features or []],
            predict=self.path, predict_batch=self.batch_path, request_schema=self.request_model.__name__,
            max_batch=self.max_batch,
        )

    def served(self) -> dict[str, str]:
        """The fields every response carries: which use case, version and model answered."""
        entry = self.entry
        return {"use_case": self.key, "version": entry["version"], "model_id": entry["model_id"],
                "algorithm": entry["algorithm"], "task": self.spec.task.value}

    def predict(self, rows: Sequence[BaseModel]) -> list[RowPrediction]:
        """Predict validated rows (instances of :attr:`request_model`) in one pass through preprocessing and model."""
        import pandas as pd

        from efimero.usecases._prep import transform

        if self.preprocessor is None or self.estimator is None:
            raise RuntimeError(f"use case {self.key} is not loaded; call load() first")
        features = self.spec.features or []
        frame = pd.DataFrame([row.model_dump(by_alias=True) for row in rows], columns=[f.name for f in features])
        matrix = transform(self.preprocessor, frame, features)
        estimator = self.estimator
        if self.spec.task in ("binary", "multiclass"):
            assert estimator.labels is not None
            probabilities = estimator.predict_proba(matrix)
            names = [str(label) for label in estimator.labels.tolist()]
            labels = estimator.labels[np.argmax(probabilities, axis=1)]  # what Estimator.predict returns
            return [RowPrediction(prediction=label, probabilities=dict(zip(names, map(float, row), strict=True)))
                    for label, row in zip(labels.tolist(), probabilities, strict=True)]
        values = estimator.predict(matrix)
        if self.spec.task == "multi_output":
            targets = self.spec.targets
            return [RowPrediction(prediction=dict(zip(targets, map(float, row), strict=True))) for row in values]
        if self.spec.task == "clustering":
            return [RowPrediction(prediction=int(value)) for value in values]
        return [RowPrediction(prediction=float(value)) for value in values]


def resolve_usecases(root: str | Path, keys: Sequence[str], *, max_batch: int) -> list[ServedUseCase]:
    """The production version of each use case in ``keys``, with its request models; nothing is loaded yet.

    Args:
        root: the use-case registry's root (``efimero usecase train --models``).
        keys: the use cases to serve; a key given twice is served once.
        max_batch: most rows of a batch request, written into each batch schema.

    Raises:
        VersionNotFoundError: a use case has no production version; the message names the key and the
            command that promotes one (or trains one, when it has no version at all).
        RegistryError: a key is not a valid use-case key.
        RegistryFormatError: the version's ``spec.json`` is not a use case this efimero reads.

    Example:
        >>> served = resolve_usecases("models/usecases", ["breast_cancer"], max_batch=1000)  # doctest: +SKIP
        >>> served[0].request_model.__name__
        'BreastCancerPredictRequest'
    """
    from efimero.registry.manifest import read_json
    from efimero.usecases import UseCaseRegistry, UseCaseSpec

    root = Path(root)
    registry = UseCaseRegistry(root)
    served = []
    for key in dict.fromkeys(keys):
        entry = registry.production(key)  # refuses a key that cannot name a registry folder
        if entry is None:
            raise VersionNotFoundError(_not_promoted(registry, key))
        path = registry.folder(key) / entry["directory"] / "spec.json"
        try:
            spec = UseCaseSpec.model_validate(read_json(path))
        except ValidationError as exc:
            raise RegistryFormatError(f"{path}: is not a use case this efimero can serve ({exc.errors()[0]['msg']}); "
                                      f"train the use case again with `efimero usecase train {key}`.") from None
        request_model = _request_model(spec, entry)
        batch_model = create_model(
            f"{_camel(key)}BatchPredictRequest", __base__=_Strict,
            __doc__=f"Rows of use case {key}, at most {max_batch}; each is a {request_model.__name__}.",
            rows=(list[request_model], Field(  # type: ignore[valid-type]
                min_length=1, max_length=max_batch, description=f"The rows to predict, 1 to {max_batch}")),
        )
        served.append(ServedUseCase(root, spec, entry, request_model, batch_model, max_batch))
    return served


def _not_promoted(registry: Any, key: str) -> str:
    """Why ``key`` cannot be served, and the command that fixes it."""
    entries = registry.entries(key)
    where = f"--models {registry.root}"
    if not entries:
        return (f"use case {key} has no version in {registry.root}, so it cannot be served. Train and promote one "
                f"with `efimero usecase train {key} {where} --promote`.")
    known = [f"{e['version']} ({e['status']})" for e in reversed(entries)]
    usable = next((e["version"] for e in reversed(entries) if e["status"] != "refused"), None)
    step = (f"promote one with `efimero usecase promote {key} {usable} {where}`" if usable is not None
            else f"every version was refused by its gate; train a better one with `efimero usecase train {key} "
                 f"{where} --promote`")
    return (f"use case {key} has no production version in {registry.root}, so it cannot be served: "
            f"{step}. Versions: {format_list(known)}.")


def _camel(key: str) -> str:
    """``breast_cancer`` → ``BreastCancer``; an underscore stays where no letter follows, so names never collide."""
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), key[:1].upper() + key[1:])


def _request_model(spec: UseCaseSpec, entry: dict[str, Any]) -> type[BaseModel]:
    """``<Key>PredictRequest``: one required field per feature, named as its column."""
    fields: dict[str, Any] = {f"f{index}": _field(feature) for index, feature in enumerate(spec.features or [])}
    doc = (f"One row of use case {spec.key} ({spec.name or spec.key}), as version {entry['version']} "
           f"({entry['algorithm']}) was trained on: every feature is required, numbers must be finite and within "
           "the use case's range, categories one of its values, and no other field is allowed.")
    return create_model(f"{_camel(spec.key)}PredictRequest", __base__=_Strict, __doc__=doc, **fields)


def _field(feature: Any) -> tuple[Any, Any]:
    """The annotation and ``Field`` of one feature (Python names are ``f0``, ``f1``…; the JSON name is the column)."""
    named = {"alias": feature.name, "title": feature.name}
    if feature.kind == "numeric":
        low = "" if feature.min is None else f"at least {feature.min}"
        high = "" if feature.max is None else f"at most {feature.max}"
        bounds = " and ".join(part for part in (low, high) if part)
        return float, Field(ge=feature.min, le=feature.max, strict=True, allow_inf_nan=False, **named,
                            description="A finite number" + (f", {bounds}" if bounds else ""))
    if feature.categories:
        options = Literal[tuple(feature.categories)]  # type: ignore[valid-type]
        return options, Field(**named, description=f"One of {', '.join(feature.categories[:10])}"
                              + (f" … ({len(feature.categories)} values)" if len(feature.categories) > 10 else ""))
    return str, Field(min_length=1, max_length=MAX_TEXT_CHARS, **named,
                      description=f"A category, as text (at most {MAX_TEXT_CHARS} characters)")
