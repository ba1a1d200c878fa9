"""Build raftnode as one executable zipapp file: what gets copied to nodes that have only python3."""

from __future__ import annotations

import importlib.resources
import os
import pathlib
import zipfile

INTERPRETER = b"#!/usr/bin/env python3\n"
MAIN = "from raftnode.cli import main\nimport sys\nsys.exit(main())\n"


def build(out: str | os.PathLike[str]) -> pathlib.Path:
    """Write the zipapp to ``out`` (made executable) and return its path.

    Reads the package's own sources through importlib.resources, so it also works when run
    from inside a zipapp.
    """
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pkg = importlib.resources.files("raftnode")
    sources = sorted(
        (p.name, p.read_bytes()) for p in pkg.iterdir() if p.name.endswith(".py") and p.is_file()
    )
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(INTERPRETER)
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("__main__.py", MAIN)
            for name, data in sources:
                z.writestr(f"raftnode/{name}", data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
    return out
