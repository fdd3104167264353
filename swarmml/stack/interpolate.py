"""Compose variable interpolation.

${VAR} and $VAR, ${VAR:-default} (unset or empty), ${VAR-default} (unset),
${VAR:?error} / ${VAR?error} (required), $$ for a literal dollar: what
docker/cli supports. Also, as the compose specification does, ${VAR:+alt} /
${VAR+alt} and defaults that are themselves interpolated (${A:-${B:-x}}).
docker/cli's template parser (cli/compose/template) has neither, so
unsupported_by_docker_cli() finds them, for a warning: a file that uses them
deploys with swarmml, but `docker stack deploy` refuses or misreads it.
"""
import re
from dataclasses import dataclass

from swarmml.errors import UsageError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")


@dataclass(frozen=True)
class _Variable:
    """One ${...} or $NAME of a string: as written, its name, its operator (None: none) and what follows it."""
    written: str
    name: str
    op: str | None = None
    arg: str = ""


def _parts(text, where):
    """text split into literal pieces (str) and variables, in order; UsageError on a malformed one."""
    i, n = 0, len(text)
    while i < n:
        dollar = text.find("$", i)
        if dollar < 0:
            yield text[i:]
            return
        if dollar > i:
            yield text[i:dollar]
        nxt = text[dollar + 1] if dollar + 1 < n else ""
        if nxt == "$":
            yield "$"
            i = dollar + 2
        elif nxt == "{":
            end = _closing_brace(text, dollar + 2)
            if end < 0:
                raise UsageError(f"{where}: invalid interpolation format in {text!r} (no closing '}}')")
            yield _braced(text, dollar, end, where)
            i = end + 1
        else:
            m = _NAME.match(text, dollar + 1)
            if not m:
                raise UsageError(f"{where}: invalid interpolation format in {text!r} "
                                 "(a '$' not followed by a name; write '$$' for a dollar)")
            yield _Variable(text[dollar:m.end()], m.group(0))
            i = m.end()


def _closing_brace(text, start):
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _braced(text, start, end, where):
    """The variable text[start:end + 1], a ${...}."""
    body = text[start + 2:end]
    m = _NAME.match(body)
    if not m:
        raise UsageError(f"{where}: invalid interpolation format in {text!r} (expected a variable name after '${{')")
    name, rest = m.group(0), body[m.end():]
    if not rest:
        return _Variable(text[start:end + 1], name)
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise UsageError(f"{where}: invalid interpolation format in {text!r} "
                         f"(after ${{{name} expected one of {', '.join(_OPS)} or '}}')")
    return _Variable(text[start:end + 1], name, op, rest[len(op):])


def _value(var, environ, where):
    value = environ.get(var.name)
    if var.op is None:
        return value or ""
    missing = value is None or (var.op.startswith(":") and value == "")
    if var.op.endswith("-"):
        return interpolate_string(var.arg, environ, where) if missing else value
    if var.op.endswith("+"):
        return "" if missing else interpolate_string(var.arg, environ, where)
    if missing:
        why = interpolate_string(var.arg, environ, where)
        raise UsageError(f"{where}: required variable {var.name} is missing a value" + (f": {why}" if why else ""))
    return value


def interpolate_string(text, environ, where):
    return "".join(p if isinstance(p, str) else _value(p, environ, where) for p in _parts(text, where))


def _map_strings(node, fn, path=""):
    """node with every string value (not keys) replaced by fn(string, key path)."""
    if isinstance(node, str):
        return fn(node, path)
    if isinstance(node, dict):
        return {k: _map_strings(v, fn, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, fn, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


def _where(filename, path):
    return f"{filename}: {path}" if path else filename


def interpolate(node, environ, filename):
    """Interpolate every string value (not keys) of a parsed YAML tree; errors name file and key path."""
    return _map_strings(node, lambda text, path: interpolate_string(text, environ, _where(filename, path)))


# docker/cli's template reads ${NAME, an operator among :- - :? ?, then plain text up to the first '}'. So it
# has no ':+' or '+' (an invalid template), never interpolates a default (the text stays as written), and
# ends a variable at a nested one's '}' (the rest stays as text): an image then is no valid reference.
_REFUSED = "docker stack deploy would refuse this file"
_REFUSED_OR_MISREAD = "docker stack deploy would refuse or misread this file"


def _docker_cli_lacks(var):
    """What docker/cli's template can't read as swarmml does in this variable, and what follows; or None."""
    if var.op in (":+", "+"):
        return "alternative value", _REFUSED
    if var.op in (":-", "-") and "$" in var.arg:
        return "nested default", _REFUSED_OR_MISREAD
    if "${" in var.arg:
        return "nested variable", _REFUSED_OR_MISREAD
    return None


def unsupported_by_docker_cli(node, filename):
    """One warning line per variable of a parsed (not yet interpolated) YAML tree that docker stack deploy
    would refuse or misread, naming file and key path. Pure."""
    lines = []

    def check(text, path):
        for part in _parts(text, _where(filename, path)):
            lacks = None if isinstance(part, str) else _docker_cli_lacks(part)
            if lacks:
                what, outcome = lacks
                lines.append(f"{_where(filename, path)}: {what} {part.written} — {outcome}")
        return text

    _map_strings(node, check)
    return lines


def _env_lines(path, shown, encoding=None):
    try:
        with open(path, encoding=encoding) as f:
            return f.read().splitlines()
    except OSError as exc:
        raise UsageError(f"{shown}: can't read the env file ({exc.strerror})") from None


def read_env_file(path, shown=None):
    """The .env file for interpolation: KEY=VALUE lines, # comments, `export `, optional quotes."""
    values = {}
    shown = shown or path
    for n, line in enumerate(_env_lines(path, shown), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, found, value = line.partition("=")
        key = key.strip()
        if not found or not _NAME.fullmatch(key):
            raise UsageError(f"{shown}:{n}: expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def read_service_env_file(path, shown, environ):
    """A service's env_file, read as docker does (opts.ParseEnvFile): KEY=VALUE taken literally, quotes
    included; a bare KEY takes its value from the environment, or is left out."""
    values = {}
    for n, line in enumerate(_env_lines(path, shown, encoding="utf-8-sig"), 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, found, value = line.partition("=")
        if not key or any(ch.isspace() for ch in key):
            raise UsageError(f"{shown}:{n}: variable {key!r} contains whitespaces or is empty")
        if found:
            values[key] = value
        elif key in environ:
            values[key] = environ[key]
    return values
