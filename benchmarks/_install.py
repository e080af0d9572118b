"""chatcli as a user's `pip install .` leaves it, for the start-up benchmarks.

A development checkout runs chatcli from an editable install (`pip install -e`), whose import
hook is a .pth file that every Python start of that environment executes -- it imports pathlib,
fnmatch and importlib.util, ~15-25 ms measured here, before any of chatcli's code runs. Users who
follow the README's first command (`pip install ".[local]"`) never pay it, so measuring it would
overstate start-up by about a tenth.

`user_install()` builds, in a temporary directory, what a regular install amounts to: a fresh
virtual environment whose site-packages holds a byte-compiled copy of the `chatcli` package and a
plain `deps.pth` line pointing at the current environment's site-packages for the dependencies
(a path listed in a .pth file is added to sys.path, but the .pth files inside it are not run),
and a `chatcli` launcher with the body pip writes for a console script. Every row of a benchmark
(the bare interpreter, the SDK loop, chatcli) runs on that environment's interpreter.
"""

from __future__ import annotations

import compileall
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What pip writes for `[project.scripts] chatcli = "chatcli.cli:main"`.
LAUNCHER = """#!{python}
import re
import sys
from chatcli.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


class Install:
    def __init__(self, python: str, chatcli: str) -> None:
        self.python = python
        self.chatcli = chatcli


def user_install(where: Path, source: Path = ROOT) -> Install:
    """`source`: the checkout to install (another one's, for an A/B in the same run)."""
    venv = where / "user-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    out = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                         check=True, capture_output=True, text=True)
    packages = Path(out.stdout.strip())
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (packages / "deps.pth").write_text("".join(f"{p}\n" for p in deps))
    shutil.copytree(source / "chatcli", packages / "chatcli",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # pip byte-compiles what it installs; without the .pyc files every start would compile.
    if not compileall.compile_dir(str(packages / "chatcli"), quiet=1):
        raise RuntimeError("could not byte-compile the chatcli copy")
    launcher = venv / "bin" / "chatcli"
    launcher.write_text(LAUNCHER.format(python=python))
    launcher.chmod(0o755)
    return Install(str(python), str(launcher))


def bench_env(base: dict[str, str]) -> dict[str, str]:
    """The environment for the benchmarked processes: .pyc files allowed (an installed package has
    them), nothing from the caller's environment that would pick another chatcli."""
    env = {k: v for k, v in base.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    return env


if __name__ == "__main__":  # a quick check: python benchmarks/_install.py
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        inst = user_install(Path(tmp))
        subprocess.run([inst.chatcli, "--version"], env=bench_env(dict(os.environ)), check=True)
