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
import platform
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


def _optimisation_flags(compiler_type, extension_name):
    avx2 = extension_name.endswith("_avx2")
    if compiler_type == "msvc":
        return ["/O2"] + (["/arch:AVX2"] if avx2 else [])
    return ["-O3", "-fno-math-errno"] + (["-mavx2", "-mfma"] if avx2 else [])


class BuildExt(build_ext):
    """Pick OpenMP flags for the compiler at hand; fall back gracefully."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1  # the two builds compile at once

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
        openmp_compile, openmp_link = [], []
        if not _env_flag("FASTEM_DISABLE_OPENMP"):
            flags = _openmp_flags(compiler_type)
            if self._compiles_with_openmp(*flags):
                openmp_compile, openmp_link = flags
            else:
                print("fastem: OpenMP not available; building serial kernels")
        for ext in self.extensions:
            compile_args = _optimisation_flags(compiler_type, ext.name) + openmp_compile
            ext.extra_compile_args = list(ext.extra_compile_args or []) + compile_args
            ext.extra_link_args = list(ext.extra_link_args or []) + openmp_link
            ext.define_macros = list(ext.define_macros or []) + [
                ("FASTEM_BUILD_FLAGS", '"%s"' % " ".join(dict.fromkeys(compile_args + openmp_link))),
            ]
        super().build_extensions()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            # The AVX2 build is an optional extra; the portable one may be required.
            if ext.name == "fastem._kernels" and _env_flag("FASTEM_REQUIRE_EXTENSION"):
                raise
            print(
                f"fastem: WARNING: {ext.name} failed to build ({exc}); "
                "fastem falls back to the portable kernels or the pure NumPy backend"
            )


def _render_templates():
    """Generate each ``.pyx`` from its Tempita template ``.pyx.tp``."""
    from Cython import Tempita

    template = "fastem/_kernels.pyx.tp"
    with open(template) as f:
        text = Tempita.sub(f.read())
    # One source, two builds: portable, and for CPUs with AVX2 and FMA.
    for target in ["fastem/_kernels.pyx", "fastem/_kernels_avx2.pyx"]:
        if os.path.exists(target):
            with open(target) as f:
                if f.read() == text:
                    continue
        with open(target, "w") as f:
            f.write(text)


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
    _render_templates()
    debug = _env_flag("FASTEM_CYTHON_DEBUG")
    extensions = [Extension("fastem._kernels", ["fastem/_kernels.pyx"])]
    if platform.machine().lower() in ("x86_64", "amd64"):
        extensions.append(
            Extension("fastem._kernels_avx2", ["fastem/_kernels_avx2.pyx"])
        )
    return cythonize(
        extensions,
        nthreads=os.cpu_count() or 1,
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
