"""Compose variable interpolation.

${VAR} and $VAR, ${VAR:-default} (unset or empty), ${VAR-default} (unset),
${VAR:?error} / ${VAR?error} (required), $$ for a literal dollar: what
docker/cli supports. Also, as the compose specification does, ${VAR:+alt} /
${VAR+alt} and defaults that are themselves interpolated (${A:-${B:-x}}).
"""
import re

from swarmml.errors import UsageError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")


def interpolate_string(text, environ, where):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise UsageError(f"{where}: invalid interpolation format in {text!r} (no closing '}}')")
            out.append(_braced(text[i + 2:end], environ, where, text))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if not m:
                raise UsageError(f"{where}: invalid interpolation format in {text!r} "
                                 "(a '$' not followed by a name; write '$$' for a dollar)")
            out.append(environ.get(m.group(0), ""))
            i = m.end()
    return "".join(out)


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


def _braced(body, environ, where, text):
    m = _NAME.match(body)
    if not m:
        raise UsageError(f"{where}: invalid interpolation format in {text!r} (expected a variable name after '${{')")
    name, rest = m.group(0), body[m.end():]
    if not rest:
        return environ.get(name, "")
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise UsageError(f"{where}: invalid interpolation format in {text!r} "
                         f"(after ${{{name} expected one of {', '.join(_OPS)} or '}}')")
    arg = rest[len(op):]
    value = environ.get(name)
    missing = value is None or (op.startswith(":") and value == "")
    if op.endswith("-"):
        return interpolate_string(arg, environ, where) if missing else value
    if op.endswith("+"):
        return "" if missing else interpolate_string(arg, environ, where)
    if missing:
        why = interpolate_string(arg, environ, where)
        raise UsageError(f"{where}: required variable {name} is missing a value" + (f": {why}" if why else ""))
    return value


def interpolate(node, environ, filename, path=""):
    """Interpolate every string value (not keys) of a parsed YAML tree; errors name file and key path."""
    if isinstance(node, str):
        return interpolate_string(node, environ, f"{filename}: {path}" if path else filename)
    if isinstance(node, dict):
        return {k: interpolate(v, environ, filename, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, environ, filename, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


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
