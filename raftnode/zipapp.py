"""Build raftnode as one executable zipapp file: what gets copied to nodes that have only python3."""

from __future__ import annotations

import os
import pathlib
import zipfile

INTERPRETER = b"#!/usr/bin/env python3\n"
MAIN = "from raftnode.cli import main\nimport sys\nsys.exit(main())\n"


def build(out: str | os.PathLike[str]) -> pathlib.Path:
    """Write the zipapp to ``out`` (made executable) and return its path.

    Reads the sources next to this very module (a directory, or the zipapp it runs from), so
    it also works from inside a zipapp and is not confused by other ``raftnode`` directories
    on ``sys.path``.
    """
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = _package_sources()
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


def _package_sources() -> list[tuple[str, bytes]]:
    here = pathlib.Path(__file__).resolve().parent
    if here.is_dir():
        return sorted((p.name, p.read_bytes()) for p in here.glob("*.py"))
    archive = here
    while not archive.is_file():  # .../raftnode.pyz/raftnode -> .../raftnode.pyz
        archive = archive.parent
    with zipfile.ZipFile(archive) as z:
        return sorted(
            (n.split("/", 1)[1], z.read(n))
            for n in z.namelist()
            if n.startswith("raftnode/") and n.endswith(".py") and n.count("/") == 1
        )
