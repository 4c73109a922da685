"""Refuse answers that would give a plugin mldock cannot load (runs before any file is written)."""

import re
import sys

plugin = "{{ cookiecutter.plugin_name }}"
package = "{{ cookiecutter.package_name }}"
concern = "{{ cookiecutter.concern }}"
scheme = "{{ cookiecutter.uri_scheme }}"

problems = []
if not re.match(r"^[a-z][a-z0-9_-]{0,39}$", plugin):
    problems.append(f"plugin_name {plugin!r}: use 1-40 lowercase letters, digits, '-' or '_',"
                    " starting with a letter")
if not package.isidentifier():
    problems.append(f"package_name {package!r} is not a valid Python package name")
if not re.match(r"^[a-z][a-z0-9+.-]*$", scheme):
    problems.append(f"uri_scheme {scheme!r}: use lowercase letters, digits, '+', '-' or '.'")
if concern != "storage":
    problems.append(f"concern {concern!r}: this template has a worked example for 'storage' only;"
                    " start from it and swap the record, interface and contract class (see the"
                    " README's table)")
if problems:
    print("error: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
