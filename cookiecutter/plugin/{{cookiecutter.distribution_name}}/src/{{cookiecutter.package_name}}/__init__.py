"""{{ cookiecutter.description }}

mldock loads :mod:`{{ cookiecutter.package_name }}.plugin` through the ``mldock`` entry point group.
"""

__version__ = "0.1.0"
