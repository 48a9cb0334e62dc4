#!/usr/bin/env python3
"""Build the e2e test wheels and a PEP 503 "simple" index from tests/e2e/env/packages/.

Usage: build_wheels.py PACKAGES_DIR OUT_DIR

PACKAGES_DIR holds one folder per project version (<project>/<version>/pyproject.toml with a
PEP 621 [project] table, next to the project's top-level package folders). OUT_DIR receives:

    files/<dist>-<version>-py3-none-any.whl
    simple/index.html                 links to every project
    simple/<normalized-name>/index.html   links to its wheels, with #sha256= and
                                          data-requires-python

Why write the wheels by hand instead of `pip wheel`: PyPI is unreachable (no build isolation),
and the bytes must be identical on every machine and every run, because the committed
fixtures/poetry_project/poetry.lock records each wheel's sha256. So zip entries are sorted,
dated 1980-01-01, stored uncompressed and given fixed permissions. Only the standard library is used.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import sys
import tomllib
import zipfile
from pathlib import Path

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
GENERATOR = "imgtool-e2e-build-wheels (1)"


def normalize(name: str) -> str:
    """PEP 503 name normalization (used for the index folders)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_name(name: str) -> str:
    """Wheel file/dist-info name: normalized, with underscores (PEP 427 / binary distribution format)."""
    return normalize(name).replace("-", "_")


def record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def metadata_text(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    for requirement in project.get("dependencies", []):
        lines.append(f"Requires-Dist: {requirement}")
    return "\n".join(lines) + "\n"


def entry_points_text(project: dict) -> str | None:
    scripts = project.get("scripts") or {}
    if not scripts:
        return None
    body = "".join(f"{name} = {target}\n" for name, target in sorted(scripts.items()))
    return "[console_scripts]\n" + body


def package_files(project_dir: Path) -> list[tuple[str, bytes]]:
    """Every file of every top-level package folder (a folder with __init__.py), sorted."""
    files = []
    for package in sorted(p for p in project_dir.iterdir() if (p / "__init__.py").is_file()):
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append((path.relative_to(project_dir).as_posix(), path.read_bytes()))
    if not files:
        raise SystemExit(f"{project_dir}: no package folder with an __init__.py")
    return files


def build_wheel(project_dir: Path) -> tuple[dict, str, bytes]:
    project = tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]
    dist = dist_name(project["name"])
    version = project["version"]
    info = f"{dist}-{version}.dist-info"
    entries = package_files(project_dir)
    entries.append((f"{info}/METADATA", metadata_text(project).encode()))
    entry_points = entry_points_text(project)
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode()))
    wheel_text = (
        "Wheel-Version: 1.0\n"
        f"Generator: {GENERATOR}\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    entries.append((f"{info}/WHEEL", wheel_text.encode()))
    record = "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode()))

    buffer = io.BytesIO()
    # Stored, not deflated: deflate output may differ between zlib builds, and the hash must not.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            item = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            item.compress_type = zipfile.ZIP_STORED
            item.external_attr = 0o100644 << 16
            item.create_system = 3  # unix, so the permissions above are read
            archive.writestr(item, data)
    return project, f"{dist}-{version}-py3-none-any.whl", buffer.getvalue()


def write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def page(title: str, links: list[str]) -> bytes:
    body = "\n".join(f"    {link}<br/>" for link in links)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" "
        f"content=\"1.0\">\n    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n{body}\n  </body>\n</html>\n"
    ).encode()


def main(packages_dir: Path, out_dir: Path) -> None:
    projects: dict[str, list[tuple[dict, str, bytes]]] = {}
    for pyproject in sorted(packages_dir.glob("*/*/pyproject.toml")):
        project, filename, data = build_wheel(pyproject.parent)
        projects.setdefault(normalize(project["name"]), []).append((project, filename, data))

    wanted: set[Path] = set()
    for name, builds in sorted(projects.items()):
        links = []
        for project, filename, data in sorted(builds, key=lambda b: b[1]):
            wheel_path = out_dir / "files" / filename
            write_if_changed(wheel_path, data)
            wanted.add(wheel_path)
            sha = hashlib.sha256(data).hexdigest()
            requires = project.get("requires-python")
            attr = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            links.append(f'<a href="../../files/{filename}#sha256={sha}"{attr}>{filename}</a>')
            print(f"wheel {filename} sha256={sha}")
        index_path = out_dir / "simple" / name / "index.html"
        write_if_changed(index_path, page(f"Links for {name}", links))
        wanted.add(index_path)
    root_links = [f'<a href="{name}/">{name}</a>' for name in sorted(projects)]
    root_index = out_dir / "simple" / "index.html"
    write_if_changed(root_index, page("Simple index", root_links))
    wanted.add(root_index)

    # Drop what an older version of the packages left behind, so the index lists only these.
    for sub in ("files", "simple"):
        for path in sorted((out_dir / sub).rglob("*"), reverse=True):
            if path.is_file() and path not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
