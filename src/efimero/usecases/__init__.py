"""Any tabular use case as a YAML file: its data, features, task, algorithms, tuning and gate.

``usecases/<key>.yaml`` declares a use case (:class:`UseCaseSpec`); :func:`train_usecase`
trains every algorithm it lists with the estimators' one contract, keeps the best by the
primary metric on the validation split, tests it against a baseline, gates it with the MLOps
guide's thresholds and stores it in the use-case registry (:class:`UseCaseRegistry`), which
holds any number of use cases side by side, with an experiment log of every run.

Example:
    >>> from efimero.usecases import train_usecase
    >>> result = train_usecase("usecases/breast_cancer.yaml", models="models/usecases")  # doctest: +SKIP
    >>> result.best, result.passed
    ('logistic_regression', True)
"""

from efimero.usecases._examples import write_examples
from efimero.usecases._metrics import DEFAULT_GATES, DEFAULT_PRIMARY, LOWER_IS_BETTER, METRICS
from efimero.usecases._registry import UseCaseRegistry
from efimero.usecases._schema import UseCaseSpec, load_usecase
from efimero.usecases._train import AlgorithmRun, TrainResult, train_usecase

__all__ = [
    "DEFAULT_GATES",
    "DEFAULT_PRIMARY",
    "LOWER_IS_BETTER",
    "METRICS",
    "AlgorithmRun",
    "TrainResult",
    "UseCaseRegistry",
    "UseCaseSpec",
    "load_usecase",
    "train_usecase",
    "write_examples",
]
