"""Pure: a service's inference logs (the model service's JSON lines) found, parsed, merged and shown.

Each replica writes inference.<replica>.jsonl (rotated to .1, .2, ...) into
the directory of SWARMML_INFERENCE_LOG, on its node's volume. Nothing here
talks to an engine: swarmml/observe/inference_fetch.py gets the files' bytes.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from swarmml.errors import UsageError

SETTING = "SWARMML_INFERENCE_LOG"


def log_setting(service: dict) -> str | None:
    """The service's SWARMML_INFERENCE_LOG (its spec's environment), None when it keeps no inference log."""
    env = service["Spec"]["TaskTemplate"].get("ContainerSpec", {}).get("Env") or []
    for item in env:
        key, _, value = item.partition("=")
        if key == SETTING and value:
            return value
    return None


def file_pattern(setting: str) -> re.Pattern:
    """The names of the files the replicas write for SWARMML_INFERENCE_LOG=setting, rotated ones too:
    dir/inference.jsonl -> inference.<replica>.jsonl[.<n>] (see the model service's replica_path)."""
    tail = os.path.basename(setting)
    stem, dot, ext = tail.rpartition(".")
    if dot and stem:
        return re.compile(rf"{re.escape(stem)}\.([^./]+)\.{re.escape(ext)}(?:\.(\d+))?")
    return re.compile(rf"{re.escape(tail)}\.([^./]+)(?:\.(\d+))?")


def directory(setting: str) -> str:
    return os.path.dirname(setting) or "/"


@dataclass
class Parsed:
    records: list[dict] = field(default_factory=list)
    bad_lines: int = 0  # lines that are not JSON objects (a partial last line of a killed process)


def parse_files(files: dict[str, bytes], pattern: re.Pattern, node: str) -> Parsed:
    """{file name: bytes} of one node's volume -> its records, each with the node it was read from."""
    out = Parsed()
    for name, data in files.items():
        if not pattern.fullmatch(name):
            continue
        for raw in data.splitlines():
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                out.bad_lines += 1
                continue
            if not isinstance(rec, dict) or "time" not in rec:
                out.bad_lines += 1
                continue
            rec["node"] = node
            out.records.append(rec)
    return out


def select(records: list[dict], since: str | None = None, tail: int | None = None, grep: re.Pattern | None = None,
           status: str | None = None) -> list[dict]:
    """In time order (the records' RFC 3339 times sort as text), filtered, the last `tail` of them.

    since: an RFC 3339 time; grep: matched against the record's JSON line; status: "ok" (2xx) or "error".
    """
    out = sorted(records, key=lambda r: (r.get("time", ""), str(r.get("id", ""))))
    if since is not None:
        out = [r for r in out if r.get("time", "") >= since]
    if status == "ok":
        out = [r for r in out if 200 <= int(r.get("status") or 0) < 300]
    elif status == "error":
        out = [r for r in out if not 200 <= int(r.get("status") or 0) < 300]
    elif status is not None:
        raise UsageError(f"--status: expected ok or error, got {status!r}")
    if grep is not None:
        out = [r for r in out if grep.search(json.dumps(r))]
    if tail is not None:
        out = out[-tail:] if tail else []
    return out


def render(rec: dict) -> str:
    """One line for people: time, replica@node, model:version, status, latency, id (and the sample's
    inputs/outputs, when the request was sampled)."""
    line = (f"{rec.get('time', '?')} {rec.get('replica', '?')}@{rec.get('node', '?')} "
            f"{rec.get('model', '?')}:{rec.get('version', '?')} {rec.get('status', '?')} "
            f"{float(rec.get('latency_ms') or 0):.2f}ms id={rec.get('id', '?')}")
    for key in ("inputs", "outputs"):
        if key in rec:
            line += f" {key}={json.dumps(rec[key], separators=(',', ':'))}"
    return line
