"""The version of fastem, in one place.

A literal, read by setuptools without importing the package
(``[tool.setuptools.dynamic]`` in pyproject.toml).
"""

__version__ = "0.1.0"
