"""Domino's ``dockerfileInstructions`` as the core's requirements: the part of the Dockerfile grammar ModelHarbor
builds. An environment here is a base interpreter plus Python packages (core/serving/environment_catalog.py), so
of a Dockerfile only ``RUN pip install <requirement> …`` lines are honoured; any other instruction is refused when
the environment or revision is made (400 naming it), never ignored.

Accepted, line by line (``\\``-continued lines joined first):

- blank lines and ``#`` comments;
- ``RUN pip install …`` (also ``pip3``, ``python -m pip``, ``python3 -m pip``; shell or JSON exec form) with plain
  requirement specifiers — a name, optional extras and version constraints, quoted where the shell would read
  ``<``/``>`` as redirections (``"numpy>=2"``) — and the options ``--no-cache-dir``, ``--upgrade``/``-U``,
  ``--quiet``/``-q``, ``--user`` (they change nothing here).

Refused: every other instruction (``FROM`` — name the base with ``image``; ``ENV``, ``ARG``, ``COPY``, ``ADD``,
``USER``, ``WORKDIR`` …), other commands (``RUN apt-get …``), shell operators (``&&``, ``;``, ``|``, redirections),
``-r``/``-c`` files, index and link options, URLs and paths.
"""

from __future__ import annotations

import re
import shlex

from modelharbor.core.jsontext import JsonRejected, loads
from modelharbor.domain.errors import InvalidInput

SUPPORTED = (
    "ModelHarbor builds environments as a base interpreter plus Python packages: dockerfileInstructions may hold "
    "only comments and 'RUN pip install <package> …' lines (plain requirement specifiers such as \"numpy>=2\"; "
    "also pip3 or python -m pip), and the base is named with 'image'"
)
_QUIET_OPTIONS = {"--no-cache-dir", "--upgrade", "-U", "--quiet", "-q", "--user", "--no-input", "--progress-bar=off"}
_REQUIREMENT = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]*\])?"
    r"(\s*(===|==|>=|<=|~=|!=|<|>)\s*[A-Za-z0-9.*+!_-]+(\s*,\s*(===|==|>=|<=|~=|!=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?"
    r"(\s*;\s*[A-Za-z0-9_.'\"<>=!~ ()-]+)?"
)
_HINTS = {
    "FROM": "name the base with 'image' instead",
    "ENV": "environment variables are not part of an environment here",
    "ARG": "build arguments are not supported",
    "COPY": "files cannot be copied into an environment here",
    "ADD": "files cannot be added to an environment here",
}
_OPERATORS = set("();<>|&")


def _lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending and raw.lstrip().startswith("#"):
            continue
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _words(number: int, rest: str) -> list[str]:
    if rest.startswith("["):  # exec form: RUN ["pip", "install", "x"]
        try:
            words = loads(rest, what="RUN's JSON form")
        except JsonRejected:
            raise InvalidInput(f"dockerfileInstructions line {number}: RUN's JSON form is not a JSON list") from None
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise InvalidInput(f"dockerfileInstructions line {number}: RUN's JSON form must list strings")
        return words
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError as exc:
        raise InvalidInput(f"dockerfileInstructions line {number}: {exc}") from None
    for word in words:
        if word and set(word) <= _OPERATORS:
            raise InvalidInput(
                f"dockerfileInstructions line {number}: the shell operator {word!r} is not supported (one "
                "'pip install' per RUN line; quote version specifiers such as \"numpy>=2\"). " + SUPPORTED
            )
    return words


def _pip_arguments(number: int, words: list[str]) -> list[str]:
    if words[:2] in (["pip", "install"], ["pip3", "install"]):
        return words[2:]
    if len(words) >= 4 and words[0] in ("python", "python3") and words[1:4] == ["-m", "pip", "install"]:
        return words[4:]
    command = " ".join(words[:2]) or "(nothing)"
    raise InvalidInput(f"dockerfileInstructions line {number}: 'RUN {command} …' is not supported. {SUPPORTED}")


def requirements_of(text: str) -> list[str]:
    """The requirement specifiers of ``dockerfileInstructions`` (InvalidInput naming the first line refused)."""
    found: list[str] = []
    for number, line in _lines(text):
        instruction, _, rest = line.partition(" ")
        name = instruction.upper()
        if name != "RUN":
            hint = _HINTS.get(name, "it is not supported")
            raise InvalidInput(
                f"dockerfileInstructions line {number}: the instruction {name} is refused ({hint}). {SUPPORTED}"
            )
        args = _pip_arguments(number, _words(number, rest.strip()))
        specs = []
        for arg in args:
            if arg.startswith("-"):
                if arg in _QUIET_OPTIONS:
                    continue
                if arg.split("=")[0] in ("-r", "--requirement", "-c", "--constraint") or arg.startswith(("-r", "-c")):
                    raise InvalidInput(
                        f"dockerfileInstructions line {number}: pip's {arg.split('=')[0]} (a file) is not allowed: "
                        "list the packages themselves"
                    )
                raise InvalidInput(f"dockerfileInstructions line {number}: the pip option {arg!r} is not supported")
            if not _REQUIREMENT.fullmatch(arg.strip()):
                raise InvalidInput(
                    f"dockerfileInstructions line {number}: {arg!r} is not a plain requirement specifier (a package "
                    "name with optional extras and version, no URLs or paths)"
                )
            specs.append(arg.strip())
        if not specs:
            raise InvalidInput(f"dockerfileInstructions line {number}: 'pip install' names no package")
        found += specs
    return found
