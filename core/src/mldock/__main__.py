"""``python -m mldock``: the same CLI as the ``mldock`` console script.

Useful where the scripts folder is not on ``PATH`` (a fresh virtualenv, ``pipx run``, CI images),
and to pick the interpreter explicitly: ``python3.12 -m mldock --version``.
"""

from __future__ import annotations

from mldock.cli.main import main

if __name__ == "__main__":
    main()
