"""``--engine``, ``--scheduler``, ``--workers`` and ``--worker-memory``: where a command trains, shared by
``train``, ``retrain incremental`` and ``retrain full`` (``engine: _engine.Engine = _engine.engine("...")``)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from efimero.training import DaskEngine


class Engine(StrEnum):
    local = "local"
    dask = "dask"


def engine(on_dask: str) -> Any:
    """``--engine``; ``on_dask`` says what the command does with Dask."""
    return typer.Option(Engine.local, help=f"local: one process; dask: {on_dask}; on a LocalCluster or --scheduler.")


def scheduler() -> Any:
    return typer.Option(None, help="Dask scheduler address (tcp://host:8786) for --engine dask. "
                        "\\[default: a new LocalCluster]")


def workers() -> Any:
    return typer.Option(2, min=1, help="LocalCluster worker processes for --engine dask.")


def worker_memory() -> Any:
    return typer.Option("2GiB", help="Memory limit of each LocalCluster worker (--engine dask); workers spill to "
                        "disk past 60 % of it.")


def dask_engine(name: Engine, address: str | None, local_workers: int, memory: str) -> DaskEngine | None:
    """The Dask engine the flags ask for (``--engine dask``, or any ``--scheduler``), else None (local)."""
    from efimero.training import DaskEngine

    if name is Engine.dask or address is not None:
        return DaskEngine(scheduler=address, workers=local_workers, worker_memory=memory)
    return None
