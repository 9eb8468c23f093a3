"""Build the compiled kernels of fastem.

Environment switches
--------------------
FASTEM_NO_EXTENSION=1       build no extension: the package runs on its pure backend.
FASTEM_REQUIRE_EXTENSION=1  a failed compilation is a build error (otherwise it
                            falls back to the pure backend with a warning).
FASTEM_DISABLE_OPENMP=1     build the kernels serially, without OpenMP.
FASTEM_OPENMP_CFLAGS, FASTEM_OPENMP_LDFLAGS
                            override the OpenMP compile and link flags.
FASTEM_CYTHON_DEBUG=1       turn bounds checking back on inside the kernels.
"""

import os
import shlex
import sys
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _openmp_flags(compiler_type):
    """Return (compile_args, link_args) for OpenMP with this compiler."""
    if "FASTEM_OPENMP_CFLAGS" in os.environ or "FASTEM_OPENMP_LDFLAGS" in os.environ:
        return (
            shlex.split(os.environ.get("FASTEM_OPENMP_CFLAGS", "")),
            shlex.split(os.environ.get("FASTEM_OPENMP_LDFLAGS", "")),
        )
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang has no driver flag for OpenMP; libomp comes from Homebrew.
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def _optimisation_flags(compiler_type):
    if compiler_type == "msvc":
        return ["/O2"]
    return ["-O3", "-fno-math-errno"]


class BuildExt(build_ext):
    """Pick OpenMP flags for the compiler at hand; fall back gracefully."""

    def _compiles_with_openmp(self, compile_args, link_args):
        source = textwrap.dedent(
            """
            #include <omp.h>
            int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
            """
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "check_openmp.c")
            with open(path, "w") as f:
                f.write(source)
            try:
                objects = self.compiler.compile(
                    [path], output_dir=tmp, extra_postargs=compile_args
                )
                self.compiler.link_executable(
                    objects, "check_openmp", output_dir=tmp, extra_postargs=link_args
                )
            except Exception:
                return False
        return True

    def build_extensions(self):
        compiler_type = self.compiler.compiler_type
        compile_args = _optimisation_flags(compiler_type)
        link_args = []
        openmp = False
        if not _env_flag("FASTEM_DISABLE_OPENMP"):
            omp_compile, omp_link = _openmp_flags(compiler_type)
            if self._compiles_with_openmp(omp_compile, omp_link):
                compile_args += omp_compile
                link_args += omp_link
                openmp = True
            else:
                print("fastem: OpenMP not available; building serial kernels")
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args or []) + compile_args
            ext.extra_link_args = list(ext.extra_link_args or []) + link_args
            ext.define_macros = list(ext.define_macros or []) + [
                ("FASTEM_BUILD_OPENMP", "1" if openmp else "0"),
                ("FASTEM_BUILD_FLAGS", '"%s"' % " ".join(compile_args + link_args)),
            ]
        try:
            super().build_extensions()
        except Exception as exc:
            if _env_flag("FASTEM_REQUIRE_EXTENSION"):
                raise
            print(
                "fastem: WARNING: the compiled extension failed to build (%s); "
                "the package will use its pure NumPy backend" % exc
            )


def _extensions():
    if _env_flag("FASTEM_NO_EXTENSION"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if _env_flag("FASTEM_REQUIRE_EXTENSION"):
            raise
        print("fastem: WARNING: Cython is missing; building the pure package only")
        return []
    debug = _env_flag("FASTEM_CYTHON_DEBUG")
    extension = Extension("fastem._kernels", ["fastem/_kernels.pyx"])
    return cythonize(
        [extension],
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": debug,
            "nonecheck": False,
        },
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
