"""Build hook: compile the per-write hot path to C with mypyc (metadata lives in pyproject.toml).

The modules in ``pyrstmdb/_native.py`` (``NATIVE_MODULES``) are plain, fully typed Python;
mypyc turns each into a C extension that imports in its place, which roughly halves the
interpreter work of a durable write and of replaying the log at open. Everything else
stays interpreted.

Set ``PYRSTMDB_PURE_PYTHON=1`` to install without compiling; the package then runs as
plain Python (same behaviour, slower). A machine without a working C compiler gets the
same.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from setuptools import setup
from setuptools.command.egg_info import egg_info

# The name of the file, in the installed distribution's metadata, that records what this
# build decided: whether it compiled and, if not, why. Tests read it to check the install.
BUILD_RECORD = "pyrstmdb_build.json"

HERE = os.path.dirname(os.path.abspath(__file__))


def _native_modules() -> list[str]:
    """The module list, read from the package without importing it (its deps may be absent)."""
    namespace: dict[str, object] = {}
    with open(os.path.join(HERE, "src", "pyrstmdb", "_native.py"), encoding="utf-8") as handle:
        exec(compile(handle.read(), "_native.py", "exec"), namespace)
    modules = namespace["NATIVE_MODULES"]
    assert isinstance(modules, tuple)
    return [str(name) for name in modules]


def _can_compile() -> bool:
    """Whether a C compiler and the Python headers work here (checked once, up front).

    All compiled modules share one library, so it is all or nothing: a machine that
    cannot build it installs pure Python, and a build that fails anywhere else is an error.
    """
    from setuptools._distutils import ccompiler, sysconfig

    compiler = ccompiler.new_compiler()
    sysconfig.customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w", encoding="utf-8") as handle:
            handle.write("#include <Python.h>\nint probe(void) { return 0; }\n")
        try:
            compiler.compile([source], output_dir=tmp, include_dirs=[sysconfig.get_python_inc()])
        except Exception as exc:
            print(
                f"pyrstmdb: no working C compiler ({exc}); installing pure Python", file=sys.stderr
            )
            return False
    return True


def _extensions() -> tuple[list[object], str]:
    """The extensions to build, and the reason when there are none."""
    if os.environ.get("PYRSTMDB_PURE_PYTHON", "").strip() not in ("", "0"):
        return [], "PYRSTMDB_PURE_PYTHON was set"
    if not _can_compile():
        return [], "no working C compiler"
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("pyrstmdb: mypyc is not available; installing pure Python", file=sys.stderr)
        return [], "mypyc is not available"
    paths = [os.path.join("src", *name.split(".")) + ".py" for name in _native_modules()]
    # Third-party packages may be missing from an isolated build environment: their
    # types only matter to the linters, which run with everything installed.
    extensions = mypycify(
        ["--ignore-missing-imports", "--config-file=", *paths],
        opt_level="3",
        group_name="pyrstmdb_native",
    )
    return list(extensions), ""


EXTENSIONS, PURE_REASON = _extensions()


class _RecordingEggInfo(egg_info):  # type: ignore[misc]
    """Writes the build record beside the other metadata, so each installation carries its own."""

    def run(self) -> None:
        super().run()
        record = {"compiled": bool(EXTENSIONS), "pure_reason": PURE_REASON}
        path = os.path.join(self.egg_info, BUILD_RECORD)
        self.write_file("build record", path, json.dumps(record, sort_keys=True) + "\n")


setup(ext_modules=EXTENSIONS, cmdclass={"egg_info": _RecordingEggInfo})
