"""Print pip constraints that pin every dependency of pyproject.toml to its floor (``>=X`` → ``==X``).

`make test-lowest` installs with them, so a floor the code does not work with fails CI.
"""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"]:
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]+\])?>=([0-9][0-9.]*)", requirement)
    if match is None:
        sys.exit(f"pyproject.toml: dependency {requirement!r} must read NAME>=FLOOR to be checked at its floor")
    print(f"{match.group(1)}=={match.group(2)}")
