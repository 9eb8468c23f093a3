"""Build the compiled kernels of fastem.

All the package metadata is in pyproject.toml; this file only describes the two
builds of the compiled kernels, ``fastem._kernels`` (portable) and, when the
target is x86-64, ``fastem._kernels_avx2`` (AVX2 and FMA, chosen at run time on
CPUs that have them). Both are generated from the Tempita template
``fastem/_kernels.pyx.tp``, which is rendered and cythonized when ``build_ext``
runs (not when an sdist is made: the sdist ships the template only).

The extension is optional: when it cannot be built (no C compiler, no Cython) the
install completes with the pure NumPy backend and a warning, unless
FASTEM_REQUIRE_EXTENSION=1. A failed AVX2 build never fails the install.

Environment switches
--------------------
FASTEM_NO_EXTENSION=1       build no extension: the package runs on its pure backend.
FASTEM_REQUIRE_EXTENSION=1  a failed compilation of the portable kernels is a build
                            error (otherwise it falls back to the pure backend with
                            a warning).
FASTEM_DISABLE_OPENMP=1     build the kernels serially, without OpenMP.
FASTEM_REQUIRE_OPENMP=1     a compiler without working OpenMP is a build error
                            (otherwise serial kernels are built, with a warning).
FASTEM_OPENMP_CFLAGS, FASTEM_OPENMP_LDFLAGS
                            override the OpenMP compile and link flags (used as
                            they are, after a check that they compile and link).
FASTEM_CYTHON_DEBUG=1       turn bounds checking back on inside the kernels.
"""

import os
import re
import shlex
import sys
import sysconfig
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

TEMPLATE = "fastem/_kernels.pyx.tp"
PORTABLE = "fastem._kernels"
AVX2 = "fastem._kernels_avx2"


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _say(message):
    print(f"fastem: {message}", file=sys.stderr, flush=True)


def _warn(message):
    _say(f"WARNING: {message}")


def _target_is_x86_64():
    """True when the wheel being built is for x86-64 (cross builds included)."""
    # sysconfig.get_platform() honours _PYTHON_HOST_PLATFORM, which cross builds
    # set (e.g. 'macosx-11.0-arm64' on an Intel Mac); ARCHFLAGS names the
    # architectures of a macOS build ('-arch arm64', '-arch x86_64 -arch arm64').
    target = sysconfig.get_platform().lower()
    if sys.platform == "darwin":
        arches = set(re.findall(r"-arch\s+(\S+)", os.environ.get("ARCHFLAGS", "")))
        if arches:
            return arches == {"x86_64"}
        return target.endswith("x86_64")
    return target.endswith(("x86_64", "amd64"))


def _homebrew_libomp_prefixes():
    """Where Homebrew keeps libomp (Apple silicon, Intel, or $HOMEBREW_PREFIX)."""
    roots = [os.environ.get("HOMEBREW_PREFIX", ""), "/opt/homebrew", "/usr/local"]
    prefixes = []
    for root in dict.fromkeys(r for r in roots if r):
        prefix = os.path.join(root, "opt", "libomp")
        if os.path.isfile(os.path.join(prefix, "include", "omp.h")):
            prefixes.append(prefix)
    return prefixes


def _openmp_candidates(compiler_type):
    """(compile_args, link_args) to try in turn for OpenMP with this compiler."""
    if "FASTEM_OPENMP_CFLAGS" in os.environ or "FASTEM_OPENMP_LDFLAGS" in os.environ:
        return [(
            shlex.split(os.environ.get("FASTEM_OPENMP_CFLAGS", "")),
            shlex.split(os.environ.get("FASTEM_OPENMP_LDFLAGS", "")),
        )]
    if compiler_type == "msvc":
        return [(["/openmp"], [])]
    # gcc and LLVM's clang (MinGW included).
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":
        # Apple clang has no -fopenmp driver flag: the preprocessor flag, and the
        # libomp runtime from Homebrew (`brew install libomp`, keg-only).
        for prefix in _homebrew_libomp_prefixes():
            candidates.append((
                ["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
                [f"-L{prefix}/lib", "-lomp"],
            ))
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    return candidates


def _optimisation_flags(compiler_type, avx2):
    if compiler_type == "msvc":
        # MSVC has no -mavx2/-mfma: /arch:AVX2 enables both.
        return ["/O2"] + (["/arch:AVX2"] if avx2 else [])
    # -g0: no debug information (Python's own CFLAGS ask for it), unless
    # debugging; a debugging build (bounds checks, run by the fuzz tests) is
    # optimised less, which halves its compile time.
    debug = _env_flag("FASTEM_CYTHON_DEBUG")
    return (["-O1" if debug else "-O3", "-fno-math-errno"] + ([] if debug else ["-g0"])
            + (["-mavx2", "-mfma"] if avx2 else []))


def _warn_pure(reason):
    _warn(
        f"{reason}.\n"
        "fastem: WARNING: fastem is installed with its pure NumPy backend only: the "
        "same results, more slowly. For the compiled kernels, install a C compiler "
        "and reinstall (pip install --no-cache-dir --force-reinstall fastem); "
        "FASTEM_REQUIRE_EXTENSION=1 makes this a build error."
    )


OPENMP_CHECK = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 && omp_get_max_threads() > 0 ? 0 : 1;
}
"""


def _c_string(text):
    """``text`` as a C string literal, for a -D macro definition."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class BuildExt(build_ext):
    """Cythonize, pick the OpenMP flags of the compiler at hand, fall back gracefully."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1  # the two builds compile at once

    def run(self):
        if self.extensions:
            extensions = _cythonize(self.extensions)
            # In place: the distribution and the other commands share this list.
            self.extensions[:] = extensions
        super().run()

    def _links(self, source, compile_args=(), link_args=()):
        """True if ``source`` compiles and links into a program with these flags."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "check.c")
            with open(path, "w") as f:
                f.write(textwrap.dedent(source))
            try:
                objects = self.compiler.compile(
                    [path], output_dir=tmp, extra_postargs=list(compile_args)
                )
                self.compiler.link_executable(
                    objects, "check", output_dir=tmp, extra_postargs=list(link_args)
                )
            except Exception:
                return False
        return True

    def _openmp_flags(self, compiler_type):
        if _env_flag("FASTEM_DISABLE_OPENMP"):
            _say("FASTEM_DISABLE_OPENMP is set: building serial kernels")
            return [], []
        candidates = _openmp_candidates(compiler_type)
        for compile_args, link_args in candidates:
            if self._links(OPENMP_CHECK, compile_args, link_args):
                _say(f"OpenMP: compile {shlex.join(compile_args)!r}, "
                     f"link {shlex.join(link_args)!r}")
                return compile_args, link_args
        tried = " | ".join(
            shlex.join(dict.fromkeys(cflags + ldflags)) or "(none)"
            for cflags, ldflags in candidates
        )
        if _env_flag("FASTEM_REQUIRE_OPENMP"):
            raise RuntimeError(
                f"fastem: FASTEM_REQUIRE_OPENMP=1 but OpenMP does not work with "
                f"this compiler ({compiler_type}; tried: {tried})"
            )
        hint = " (Apple clang: `brew install libomp`)" if sys.platform == "darwin" else ""
        _warn(
            f"OpenMP does not work with this compiler (tried: {tried}){hint}; "
            "building serial kernels"
        )
        return [], []

    def build_extensions(self):
        compiler_type = self.compiler.compiler_type
        if not self._links("int main(void) { return 0; }\n"):
            reason = f"the C compiler ({compiler_type}) cannot build a program"
            if _env_flag("FASTEM_REQUIRE_EXTENSION"):
                raise RuntimeError(f"fastem: FASTEM_REQUIRE_EXTENSION=1 but {reason}")
            _warn_pure(reason)
            self.extensions[:] = []
            return
        openmp_compile, openmp_link = self._openmp_flags(compiler_type)
        for ext in self.extensions:
            compile_args = _optimisation_flags(compiler_type, ext.name == AVX2)
            compile_args += openmp_compile
            flags = " ".join(dict.fromkeys(compile_args + openmp_link))
            ext.extra_compile_args = list(ext.extra_compile_args or []) + compile_args
            ext.extra_link_args = list(ext.extra_link_args or []) + openmp_link
            ext.define_macros = list(ext.define_macros or []) + [
                ("FASTEM_BUILD_FLAGS", _c_string(flags)),
            ]
        self._failed = set()
        super().build_extensions()
        if PORTABLE in self._failed:
            self._failed.add(AVX2)  # useless without the portable build
        # Drop what failed, so that no later step (copies, editable installs)
        # looks for its file, and no orphan AVX2 build ships.
        for ext in self.extensions:
            path = self.get_ext_fullpath(ext.name)
            if ext.name in self._failed and os.path.exists(path):
                os.remove(path)
        self.extensions[:] = [e for e in self.extensions if e.name not in self._failed]

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            if ext.name == PORTABLE and _env_flag("FASTEM_REQUIRE_EXTENSION"):
                raise
            self._failed.add(ext.name)
            if ext.name == AVX2:
                # An optional extra: the portable kernels run on every CPU.
                _warn(
                    f"the AVX2 build {AVX2} failed ({exc}); "
                    "the portable kernels will be used on every CPU"
                )
            else:
                _warn_pure(f"the compiled extension {ext.name} failed to build ({exc})")


def _render_templates():
    """Generate each ``.pyx`` from the Tempita template, rewriting only on change."""
    from Cython import Tempita

    with open(TEMPLATE) as f:
        text = Tempita.sub(f.read())
    # One source, two builds: portable, and for CPUs with AVX2 and FMA.
    for target in ["fastem/_kernels.pyx", "fastem/_kernels_avx2.pyx"]:
        if os.path.exists(target):
            with open(target) as f:
                if f.read() == text:
                    continue
        with open(target, "w") as f:
            f.write(text)


def _cythonize(extensions):
    """The extensions with C sources, or [] (pure package) without Cython."""
    if all(not src.endswith(".pyx") for ext in extensions for src in ext.sources):
        return list(extensions)
    try:
        from Cython.Build import cythonize
    except ImportError:
        if _env_flag("FASTEM_REQUIRE_EXTENSION"):
            raise
        _warn_pure("Cython is missing (a build with build isolation installs it)")
        return []
    _render_templates()
    debug = _env_flag("FASTEM_CYTHON_DEBUG")
    generated = cythonize(
        list(extensions),
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
    # cythonize returns distutils Extensions: keep setuptools' own, with C sources.
    sources = {ext.name: ext.sources for ext in generated}
    for ext in extensions:
        ext.sources = list(sources[ext.name])
    return list(extensions)


def _numpy_include():
    """NumPy's C headers, so that a kernel may cimport numpy."""
    try:
        import numpy
    except ImportError:
        return []
    return [numpy.get_include()]


def _extensions():
    if _env_flag("FASTEM_NO_EXTENSION"):
        _say("FASTEM_NO_EXTENSION is set: building the pure package")
        return []
    include_dirs = _numpy_include()
    extensions = [Extension(PORTABLE, ["fastem/_kernels.pyx"], include_dirs=include_dirs)]
    if _target_is_x86_64():
        extensions.append(
            Extension(AVX2, ["fastem/_kernels_avx2.pyx"], include_dirs=include_dirs))
    return extensions


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
