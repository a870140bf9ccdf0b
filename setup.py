"""Build hook for the compiled core: every ``kalshi_platform/**/*.c`` is one extension module
named after its path (``kalshi_platform/ingestion/_delta.c`` → ``kalshi_platform.ingestion._delta``).

Everything else about the package lives in pyproject.toml. The C modules need only a C compiler
and the Python headers (gcc and python3-dev on Debian; the build uses setuptools from PyPI), and
are built by ``pip install .`` / ``pip install -e .`` on a fresh machine.
"""

from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).parent


def _extensions() -> list[Extension]:
    out = []
    for src in sorted((ROOT / "kalshi_platform").rglob("*.c")):
        rel = src.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts)
        # the headers beside a module are its own (delta_json.h, core_book.h, ...): editing one
        # rebuilds the module
        deps = [str(h.relative_to(ROOT)) for h in sorted(src.parent.glob("*.h"))]
        out.append(Extension(name, [str(rel)], depends=deps,
                             extra_compile_args=["-O2", "-std=c11"]))
    return out


setup(ext_modules=_extensions())
