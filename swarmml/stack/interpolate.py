"""Compose variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR, $$."""
import re

from swarmml.errors import UsageError

_TOKEN = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|)")
_BRACED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.S)


def interpolate_string(text, environ, where):
    def replace(m):
        if m.group(1):
            return "$"
        if m.group(3):
            return environ.get(m.group(3), "")
        braced = m.group(2)
        if braced is None:
            raise UsageError(f"{where}: invalid interpolation format in {text!r} (a lone '$'; write '$$' for a dollar)")
        bm = _BRACED.match(braced)
        if not bm:
            raise UsageError(f"{where}: invalid interpolation format in {text!r}")
        name, op, arg = bm.group(1), bm.group(2), bm.group(3) or ""
        value = environ.get(name)
        if op is None:
            return value or ""
        unset_or_empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return interpolate_string(arg, environ, where) if unset_or_empty else value
        if op.endswith("+"):
            return "" if unset_or_empty else interpolate_string(arg, environ, where)
        if unset_or_empty:  # ? and :?
            raise UsageError(f"{where}: required variable {name} is missing a value" + (f": {arg}" if arg else ""))
        return value

    return _TOKEN.sub(replace, text)


def interpolate(node, environ, filename, path=""):
    """Interpolate every string value (not keys) of a parsed YAML tree; errors name file and key path."""
    if isinstance(node, str):
        return interpolate_string(node, environ, f"{filename}: {path}" if path else filename)
    if isinstance(node, dict):
        return {k: interpolate(v, environ, filename, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, environ, filename, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


def read_env_file(path):
    """KEY=VALUE lines; # comments; optional quotes. Returns a dict."""
    values = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[7:].lstrip()
            if "=" not in line:
                raise UsageError(f"{path}:{n}: expected KEY=VALUE, got {line!r}")
            key, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key.strip()] = value
    return values
