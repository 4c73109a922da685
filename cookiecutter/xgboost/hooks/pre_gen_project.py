"""Refuse names that would give a broken project (runs before any file is written).

``mldock init`` checks the same rules before it starts; this hook covers answers typed at the
prompts and plain ``cookiecutter`` use of the template.
"""

import keyword
import re
import sys

slug = "{{ cookiecutter.project_slug }}"
package = "{{ cookiecutter.package_name }}"
python_version = "{{ cookiecutter.python_version }}"

problems = []
if not re.match(r"^[a-z0-9][a-z0-9_-]{0,62}$", slug):
    problems.append(f"project_slug {slug!r}: use lowercase letters, digits, '-' and '_'")
if not package.isidentifier() or keyword.iskeyword(package):
    problems.append(f"package_name {package!r} is not a valid Python package name")
if not re.match(r"^3\.\d{1,2}$", python_version):
    problems.append(f"python_version {python_version!r}: expected e.g. 3.11")
if problems:
    print("error: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
