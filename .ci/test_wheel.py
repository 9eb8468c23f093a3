"""Test an installed fastem wheel: ``python .ci/test_wheel.py PATH/TO/tests``.

Used as cibuildwheel's test command on every platform (so written in Python,
not in a shell's syntax). It checks that the compiled, threaded backend is the
one in use, then runs the test suite twice: on the default (compiled) backend
and with FASTEM_BACKEND=python. CI is removed from the tests' environment: the
course's data files are not available here, and the tests that need them skip
only when CI is not 'true'.
"""

import os
import subprocess
import sys
from pathlib import Path


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: python .ci/test_wheel.py PATH/TO/tests")
    tests = Path(argv[0]).resolve()

    import fastem

    info = fastem.backend_info()
    print(f"fastem {fastem.__version__} from {fastem.__file__}: {info}", flush=True)
    package = Path(fastem.__file__).resolve().parent
    if tests.parent in package.parents:
        sys.exit(f"fastem was imported from the source tree ({package}), not the wheel")
    if info["backend"] != "cython" or not info["openmp"]:
        sys.exit(f"the wheel must run the compiled, threaded kernels: {info}")

    env = {k: v for k, v in os.environ.items() if k != "CI"}
    failed = False
    for backend in ("", "python"):
        run_env = dict(env, FASTEM_BACKEND=backend) if backend else env
        label = f"FASTEM_BACKEND={backend}" if backend else "default backend"
        print(f"--- pytest {tests} ({label})", flush=True)
        result = subprocess.run([sys.executable, "-m", "pytest", str(tests)], env=run_env)
        failed = failed or result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
