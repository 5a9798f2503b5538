"""The npm package: built from the file the service serves, typed, within its size budget, packable.

The ``built_client`` fixture runs ``make client``, which already fails on a type error: ``tsc``
checks the source's JSDoc strictly and compiles ``client/test/usage.ts`` (a site's use of every
export, and a misuse that must not compile) against the declarations.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import tarfile
from pathlib import Path

from tests.client.first_paint import ROOT

SOURCE = ROOT / "src" / "efimero" / "serve" / "static" / "efimero.js"
SIZE_BUDGET = 3000
"""Bytes of the minified client after gzip -9: what a site adds to its pages."""
SNIPPET_BUDGET = 600
"""Bytes of the minified head snippet, which every page inlines."""
EXPORTS = {"adapt", "applyStyle", "collectContext", "headSnippet", "loadHistory", "rate", "setConsent"}


def test_the_package_ships_the_served_file_byte_for_byte(built_client: Path) -> None:
    assert (built_client / "dist" / "efimero.js").read_bytes() == SOURCE.read_bytes()
    declarations = (built_client / "dist" / "efimero.d.ts").read_text(encoding="utf-8")
    for name in EXPORTS:
        assert f"export function {name}(" in declarations, name
    assert "export type Options = {" in declarations and "onApplied?:" in declarations


def test_the_minified_client_fits_its_budget(built_client: Path) -> None:
    minified = (built_client / "dist" / "efimero.min.js").read_bytes()
    size = len(gzip.compress(minified, compresslevel=9))
    assert size <= SIZE_BUDGET, f"efimero.min.js is {size} B min+gzip, over the {SIZE_BUDGET} B budget"
    snippet = (built_client / "dist" / "head-snippet.min.js").read_text(encoding="utf-8").strip()
    assert len(snippet.encode()) <= SNIPPET_BUDGET, f"the head snippet is {len(snippet)} B"


def test_the_readme_shows_the_current_head_snippet(built_client: Path) -> None:
    snippet = (built_client / "dist" / "head-snippet.min.js").read_text(encoding="utf-8").strip()
    assert f"<script>{snippet}</script>" in (built_client / "README.md").read_text(encoding="utf-8")


def test_npm_pack_holds_the_module_its_types_and_no_dependencies(built_client: Path, tmp_path: Path) -> None:
    packed = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(tmp_path)], cwd=built_client,
                            check=True, capture_output=True, text=True)
    (tarball,) = tmp_path.glob("efimero-*.tgz")
    assert json.loads(packed.stdout)[0]["filename"] == tarball.name
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        manifest = json.load(archive.extractfile("package/package.json"))  # type: ignore[arg-type]
    assert names == {"package/package.json", "package/README.md", "package/dist/efimero.js",
                     "package/dist/efimero.min.js", "package/dist/efimero.d.ts", "package/dist/head-snippet.min.js"}
    assert "dependencies" not in manifest and manifest["type"] == "module"
    assert manifest["exports"]["."] == {"types": "./dist/efimero.d.ts", "default": "./dist/efimero.js"}


def test_the_packed_tarball_installs_and_imports_in_node(built_client: Path, tmp_path: Path) -> None:
    """What a site's build does with the package: install the tarball offline, import it, make the snippet."""
    subprocess.run(["npm", "pack", "--pack-destination", str(tmp_path)], cwd=built_client, check=True,
                   capture_output=True)
    (tarball,) = tmp_path.glob("efimero-*.tgz")
    site = tmp_path / "site"
    site.mkdir()
    (site / "package.json").write_text('{"name": "site", "private": true, "type": "module"}', encoding="utf-8")
    subprocess.run(["npm", "install", "--offline", "--no-audit", "--no-fund", str(tarball)], cwd=site, check=True,
                   capture_output=True)
    script = ("import * as efimero from 'efimero';"
              "console.log(JSON.stringify({exports: Object.keys(efimero), snippet: efimero.headSnippet()}))")
    result = json.loads(subprocess.run(["node", "--input-type=module", "-e", script], cwd=site, check=True,
                                       capture_output=True, text=True).stdout)
    assert set(result["exports"]) == EXPORTS
    assert result["snippet"].startswith("(function restore(") and result["snippet"].endswith('("efimero.style")')
