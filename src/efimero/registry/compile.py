"""Compile a version's boosters to shared libraries, and load them only when they prove equal.

A version's ``compiled/`` folder is derived from its boosters and is the one thing added to a
version after it was created: ``compiled/COMPILED.json`` names, per model, its library, the
library's sha256 and the sha256 of the booster it was compiled from (as the version's
manifest records it), plus the platform it was built on. Nothing in it is trusted:

* a library is opened (``dlopen`` runs its code) only after its checksum matched;
* it is used only when the platform is this one, it was compiled from the very booster the
  manifest names, and its predictions equal XGBoost's on a fixed sample within 1e-5.

Anything else, or a missing folder, serves through XGBoost, with the reason logged and shown
by ``/v1/model``: a compiled form may make a version faster, never different or unloadable.

Compiling needs treelite, tl2cgen and a C compiler (``gcc`` by default) and takes seconds to
a minute, so it runs at deploy (environments with ``compile: true``) or through ``efimero
models compile``, never on the request path.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from efimero._io import atomic_write_json, sha256_file, staged_directory
from efimero.bundle import TrainedModel
from efimero.compiled import CompiledTrees
from efimero.errors import RegistryError
from efimero.registry import _layout as layout
from efimero.registry.manifest import read_json

logger = logging.getLogger(__name__)

COMPILED_DIR = "compiled"
COMPILED_INDEX = "COMPILED.json"
FORMAT_VERSION = 1
TOLERANCE = 1e-5
"""Largest absolute difference from XGBoost's output accepted on the verification sample."""
OPTIMISATION = "-O1"
"""gcc's level (tl2cgen's own is -O3): on this project's 328-tree regressor, -O1 compiled in 13 s
where -O2 took 88 s and -O3 62 s, and its predictions were as fast (11 µs a row)."""
_SAMPLE_ROWS = 512
_SAMPLE_SEED = 20261127


@dataclass(frozen=True)
class CompileReport:
    """What ``compile_version`` built: one library per model, and the check it passed."""

    version: str
    models: list[str]
    seconds: float
    max_abs_diff: float
    toolchain: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "models": self.models, "seconds": round(self.seconds, 2),
                "max_abs_diff": self.max_abs_diff, "toolchain": self.toolchain}


def this_platform() -> dict[str, str]:
    """What a shared library is tied to: the OS, the CPU architecture and the C library."""
    libc, libc_version = platform.libc_ver()
    return {"system": platform.system(), "machine": platform.machine(), "libc": f"{libc} {libc_version}".strip()}


def verification_sample(n_features: int) -> np.ndarray:
    """The fixed rows both engines must agree on: standardised features, so N(0, 1) spans
    the training data and a few wide rows reach the outermost splits."""
    rng = np.random.default_rng(_SAMPLE_SEED)
    rows = rng.standard_normal((_SAMPLE_ROWS, n_features))
    rows[: _SAMPLE_ROWS // 8] *= 4.0
    return rows


def compile_version(directory: Path, models: dict[str, TrainedModel], *, compiler: str = "gcc", jobs: int = 2,
                    progress: Callable[[str], None] | None = None) -> CompileReport:
    """Compile every booster of the version in ``directory`` into ``directory/compiled/``.

    The caller holds the registry lock and has verified the version. The libraries are built
    and checked in a staging folder that replaces ``compiled/`` whole, so a reader sees the
    old set or the new one. ``progress`` is called with each model's name once it is compiled.

    Raises:
        RegistryError: treelite or tl2cgen is not installed, the compiler is missing or
            fails, or the compiled trees disagree with XGBoost (nothing is written then).
    """
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:
        raise RegistryError(
            f"compiling needs treelite and tl2cgen ({exc.name} is not installed): pip install treelite tl2cgen."
        ) from exc
    if shutil.which(compiler) is None:
        raise RegistryError(f"compiling needs the C compiler {compiler!r}, which is not on PATH; install it "
                            "(Debian: apt-get install gcc) or serve through XGBoost.")
    started = time.perf_counter()
    manifest = read_json(directory / layout.MANIFEST)["files"]
    toolchain = {"treelite": treelite.__version__, "tl2cgen": tl2cgen.__version__, "compiler": compiler,
                 "flags": OPTIMISATION}
    entries: dict[str, dict[str, str]] = {}
    worst = 0.0
    with staged_directory(directory / COMPILED_DIR) as staging:
        for name, model in models.items():
            library = staging / f"{name}.so"
            try:
                with _chatter_logged():
                    tl2cgen.export_lib(treelite.frontend.from_xgboost(model.booster), toolchain=compiler,
                                       libpath=str(library), params={"parallel_comp": max(jobs, 1)},
                                       nthread=jobs, options=[OPTIMISATION])
            except (tl2cgen.TL2cgenError, treelite.TreeliteError, OSError) as exc:
                raise RegistryError(f"{directory.name}: compiling model {name!r} failed: {exc}") from exc
            worst = max(worst, _difference(CompiledTrees(library, model.booster.num_features()), model))
            if worst > TOLERANCE:
                raise RegistryError(
                    f"{directory.name}: the compiled trees of {name!r} differ from XGBoost by {worst:.2e} "
                    f"(> {TOLERANCE:g}); nothing was written, the version keeps serving through XGBoost."
                )
            entries[name] = {"file": library.name, "sha256": sha256_file(library),
                             "source_sha256": manifest[layout.model_file(name)]}
            if progress is not None:
                progress(name)
        atomic_write_json(staging / COMPILED_INDEX, {
            "format_version": FORMAT_VERSION, "platform": this_platform(), "toolchain": toolchain,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "max_abs_diff": worst,
            "models": entries,
        })
    return CompileReport(directory.name, list(models), time.perf_counter() - started, worst, toolchain)


@contextlib.contextmanager
def _chatter_logged() -> Iterator[None]:
    """Treelite prints its native log to stdout and warns about its own versions: both go to
    the debug log instead, so that ``--json`` output stays JSON."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for line in [*captured.getvalue().splitlines(), *(str(warning.message) for warning in caught)]:
        logger.debug("treelite: %s", line)


def load_compiled(directory: Path, models: dict[str, TrainedModel], manifest: dict[str, Any]) -> str:
    """Attach the version's compiled trees to ``models`` when every check passes; say how it serves.

    Returns ``"compiled"`` or ``"xgboost (<why not compiled>)"``. Never raises for a problem
    with ``compiled/``: the boosters stay the reference and serve whenever it cannot.
    """
    folder = directory / COMPILED_DIR
    if not (folder / COMPILED_INDEX).is_file():
        return "xgboost (not compiled; `efimero models compile` builds the fast path)"
    try:
        compiled = _open_checked(folder, models, manifest["files"])
    except (RegistryError, OSError, ValueError) as exc:
        logger.warning("%s: serving through XGBoost, not its compiled trees: %s", directory.name, exc)
        return f"xgboost (compiled trees refused: {exc})"
    for name, trees in compiled.items():
        models[name].compiled = trees
    return "compiled"


def _open_checked(folder: Path, models: dict[str, TrainedModel], files: dict[str, str]) -> dict[str, CompiledTrees]:
    index = read_json(folder / COMPILED_INDEX)
    if not isinstance(index, dict) or index.get("format_version") != FORMAT_VERSION:
        raise RegistryError(f"{COMPILED_INDEX} must have format_version {FORMAT_VERSION}")
    if index.get("platform") != this_platform():
        raise RegistryError(f"built for {index.get('platform')}, this is {this_platform()}")
    entries = index.get("models")
    if not isinstance(entries, dict) or sorted(entries) != sorted(models):
        raise RegistryError(f"{COMPILED_INDEX} must name exactly the models {sorted(models)}")
    compiled = {}
    for name, model in models.items():
        entry = entries[name]
        if entry.get("source_sha256") != files.get(layout.model_file(name)):
            raise RegistryError(f"{name}: compiled from another booster than the version's")
        library = folder / str(entry.get("file"))
        if library.parent != folder or sha256_file(library) != entry.get("sha256"):
            raise RegistryError(f"{library.name}: checksum mismatch")
        compiled[name] = trees = CompiledTrees(library, model.booster.num_features())
        difference = _difference(trees, model)
        if difference > TOLERANCE:
            raise RegistryError(f"{name}: predictions differ from XGBoost's by {difference:.2e} (> {TOLERANCE:g})")
    return compiled


def _difference(trees: CompiledTrees, model: TrainedModel) -> float:
    """Largest absolute difference between the compiled and the XGBoost output on the fixed sample."""
    import xgboost as xgb

    sample = verification_sample(model.booster.num_features())
    reference = np.asarray(model.booster.predict(xgb.DMatrix(sample, nthread=1), validate_features=False))
    compiled = trees.predict(sample)
    if compiled.size != reference.size:
        return float("inf")
    return float(np.max(np.abs(compiled.reshape(reference.shape) - reference)))
