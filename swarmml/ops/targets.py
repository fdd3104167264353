"""Finding services by the names people use: short names relative to their stack, or full names."""
from swarmml.errors import NotFound, UsageError
from swarmml.ops.state import STACK_LABEL


def match(services, name, stack=None):
    """Pure: the one service called `name` (short, relative to its stack, or full). Raises for 0 or many."""
    found = []
    for s in services:
        full = s["Spec"]["Name"]
        ns = (s["Spec"].get("Labels") or {}).get(STACK_LABEL)
        short = full[len(ns) + 1:] if ns and full.startswith(ns + "_") else full
        if stack is not None and ns != stack:
            continue
        if name in (full, short):
            found.append(s)
    if not found:
        where = f" in stack {stack!r}" if stack else ""
        known = sorted(s["Spec"]["Name"] for s in services if stack is None or
                       (s["Spec"].get("Labels") or {}).get(STACK_LABEL) == stack)
        raise NotFound(f"no service {name!r}{where}" + (f" (services: {', '.join(known)})" if known else
                                                        " (no services)"))
    if len(found) > 1:
        stacks = sorted((s["Spec"].get("Labels") or {}).get(STACK_LABEL, "-") for s in found)
        raise UsageError(f"service name {name!r} is in several stacks ({', '.join(stacks)}); add --stack")
    return found[0]


def of_stack(services, stack):
    """Pure: the services of a stack, by full name; NotFound if it has none."""
    found = [s for s in services if (s["Spec"].get("Labels") or {}).get(STACK_LABEL) == stack]
    if not found:
        raise NotFound(f"no stack named {stack!r} (no service carries {STACK_LABEL}={stack})")
    return sorted(found, key=lambda s: s["Spec"]["Name"])
