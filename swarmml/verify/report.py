"""report.json, report.md and the plot (scaling.png), from the report dict alone."""
import json
import os

from swarmml.verify import capacity, method


def _f(v, fmt="{:.1f}"):
    return "-" if v is None else fmt.format(v)


def with_interval(value, interval):
    """0.95 (0.85..1.06): a ratio and its interval over the repeats."""
    if value is None:
        return "-"
    return f"{value:.2f}" + (f" ({interval[0]:.2f}..{interval[1]:.2f})" if interval and interval[0] != interval[1]
                             else "")


def spread(step):
    lo, hi = step.get("spread_per_s") or (None, None)
    return "-" if lo is None or lo == hi else f"{lo:.1f}..{hi:.1f}"


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.2f}"


def _cpu_cells(step):
    cpu = step.get("cpu") or {}
    per = (cpu.get("replicas") or {}).get("per_container") or []
    rep = f"{sum(per) / len(per):.3f}" if per else "-"
    return [rep, _f((cpu.get("gateway") or {}).get("cores"), "{:.3f}"), _f(cpu.get("load_generator"), "{:.3f}"),
            _f((cpu.get("machine") or {}).get("busy"), "{:.2f}")]


def result(report):
    """PASS, FAIL or INCONCLUSIVE (reports written before the verdict existed have only ok)."""
    return (report.get("verdict") or ("pass" if report["ok"] else "fail")).upper()


def markdown(report):
    st = report["settings"]
    lines = [f"# swarmml verify: {report['service']}", "",
             f"Result: **{result(report)}**. {report['cluster']['nodes']} nodes on a "
             f"{report['cluster']['machine_cores']}-core machine, through {report['gateway']}." +
             (f" Curve: {st['cpus']} CPU per replica; model {st['model']}, micro-batching {st['batching']}; "
              f"{st['loop']} load, {st['connections']} connections, {st['duration_s']:g} s per step."
              if report.get("steps") else ""), "",
             "## Checks", "", "| check | ok | detail |", "| --- | --- | --- |"]
    for c in report["checks"]:
        lines.append(f"| {c['name']} | {'yes' if c['ok'] else 'NO'} | {c['detail']} |")
    if report.get("steps"):
        noise = report.get("noise") or {}
        lines += ["", "## Scaling curve", "",
                  f"Measured in the order {', '.join(map(str, st['order']))}: every step between two runs of the "
                  "base, so that E(N) compares each run with the base measured just before and after it, and a "
                  "drift of the machine over the run cancels. The table shows medians, the spread of requests/s "
                  "over the repeats, and E(N) as the median of its runs, each against the mean of the base runs "
                  "around it, with an interval from the lowest to the highest against either one, widened to a "
                  "95 % interval where the machine's noise says its runs can't pin it closer" +
                  (f" (one run's noise here: {noise['sigma']:.1%}, from {noise['dof']} ratios of runs of one step "
                   "count)" if noise.get("sigma") else "") + ". The base's interval is how far it moved from one "
                  "bracket to the next. " +
                  f"Warm-up: {st.get('warmup', 'fixed')}." +
                  (" The cores a step left wholly idle were filled with lowest-priority busy loops, so that a lone "
                   "replica was not measured beside idle cores that more replicas keep busy (the machine-busy "
                   "column leaves those loops out)."
                   if st.get("fill_idle") else ""), "",
                  "| replicas | requests/s | spread | p50 ms | p95 ms | p99 ms | errors | replica CPU ms per request | "
                  "gateway CPU ms per request | E(N) | E per CPU | min E | verdict | CPU per replica | gateway CPU | "
                  "load generator CPU | machine busy (cores) | limited by |",
                  "|" + " ---: |" * 12 + " --- |" + " ---: |" * 4 + " --- |"]
        for s in report["steps"]:
            lines.append("| " + " | ".join([str(s["replicas"]), f"{s['requests_per_s']:.1f}", spread(s),
                                             _f(s["p50_ms"]), _f(s["p95_ms"]), _f(s["p99_ms"]), str(s["errors"]),
                                             ms(s.get("cpu_s_per_request")), ms(s.get("gateway_cpu_s_per_request")),
                                             with_interval(s["efficiency"], s.get("efficiency_interval")),
                                             with_interval(s.get("cpu_efficiency"), s.get("cpu_efficiency_interval")),
                                             _f(s.get("threshold"), "{:g}"), s.get("verdict") or "-",
                                             *_cpu_cells(s), s.get("bottleneck") or "-"]) + " |")
        lines += ["", "E per CPU: the base's replica CPU-seconds per request over this step's. Near 1 while E(N) "
                  "falls means each request cost the same work and the replicas did not get their CPU (verdict "
                  "limited), not that the service scales badly (fail). Above 1 beyond the interval, in either, is "
                  "no property of a service: the verdict is suspect.", ""]
        if noise.get("pairs"):
            lines += ["The machine's noise, the same step twice in a row: " +
                      "; ".join(f"{_n(p['replicas'])} {p['requests_per_s'][0]:.1f} then {p['requests_per_s'][1]:.1f}"
                                f" requests/s ({p['difference']:.1%})" for p in noise["pairs"]) + ".", ""]
        lines += [f"- {_n(s['replicas'])}: {s['bottleneck_detail']}" for s in report["steps"]
                  if s.get("bottleneck_detail")]
        if report.get("runs"):
            lines += ["", "### Every run, in order", "",
                      "| # | replicas | requests/s | p99 ms | replica CPU ms per request | warm-up s | settled |",
                      "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
            for i, r in enumerate(report["runs"]):
                w = r.get("warmup") or {}
                lines.append(f"| {i + 1} | {r['replicas']} | {r['requests_per_s']:.1f} | {_f(r['p99_ms'])} | "
                             f"{ms(method.cpu_per_request(r))} | {_f(w.get('s'))} | "
                             f"{'yes' if w.get('settled') else 'no'} |")
    lines += _capacity_lines(report.get("capacity"))
    d = report.get("drill")
    if d:
        lines += ["", "## Node-loss drill", "",
                  f"Stopped {d['node']} ({d['replicas_on_node']} of {d['desired']} replicas) under "
                  f"{d['rate']:g} requests/s (open loop): **{d['failed']} of {d['requests']} requests failed** "
                  f"({d['failed_pct']:.3f}%, limit {d['limits']['max_failed_pct']}%); the {d['desired']} replicas ran "
                  f"again on the other nodes after **{_f(d['recovery_s'])} s** "
                  f"(limit {d['limits']['max_recovery_s']:g} s; "
                  f"Swarm marked the node down after {_f(d.get('marked_down_s'))} s, "
                  f"heartbeat {_f(d.get('heartbeat_s'), '{:g}')} s). "
                  f"Node back after {_f(d['node_back_after_s'])} s; rebalance: "
                  f"{_counts(d['rebalance']['before'])} -> {_counts(d['rebalance']['after'])}.", "",
                  "| phase | from (s after the stop) | requests | failed |", "| --- | ---: | ---: | ---: |"]
        for phase, p in d["phases"].items():
            lines.append(f"| {phase.replace('_', ' ')} | {p['from_s']:g} | {p['requests']} | {p['failed']} |")
        if d["error_kinds"]:
            lines += ["", "Failures: " + ", ".join(f"{k} {v}" for k, v in d["error_kinds"].items()) +
                      f" (at {', '.join(f'{t:g}' for t in d['failures_at_s'])} s)"]
    if st.get("left_out"):
        lines += ["", "## Steps left out", "", "The default curve's steps that this machine's free CPU could not "
                  "hold (a step whose replicas can't all get their CPU measures the machine, not the service):", ""]
        lines += [f"- {s['why']}" for s in st["left_out"]]
    if report.get("problems"):
        lines += ["", "## Problems", ""] + [f"- {p}" for p in report["problems"]]
    if report.get("inconclusive"):
        lines += ["", "## Not measured", ""] + [f"- {p}" for p in report["inconclusive"]]
    return "\n".join(lines) + "\n"


def _capacity_lines(cap):
    if not cap:
        return []
    slo = f"p{cap['slo']['percentile']:g} <= {cap['slo']['bound_ms']:g} ms"
    lines = ["", f"## Capacity under {slo}", "",
             f"Each replica count got an open-loop load rising from {capacity.LADDER[0]:.0%} of its closed-loop "
             f"throughput in steps of {capacity.LADDER[1] - capacity.LADDER[0]:.0%}, latency counted from when "
             "each request was due; it sustains the highest rate with the percentile "
             "within the SLO, no failed request and the queue not growing. A rate that missed was measured "
             "once more and judged on both windows together.", "",
             "| replicas | closed loop requests/s | sustained requests/s | per replica | "
             f"p{cap['slo']['percentile']:g} ms at it | first missed at | why | limited by |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in cap["rows"]:
        lines.append(f"| {r['replicas']} | {r['closed_loop_per_s']:.1f} | "
                     f"{'at least ' if r.get('at_least') else ''}{_f(r['sustainable_per_s'])} | "
                     f"{_f(r['per_replica_per_s'])} | {_f(r['latency_ms'])} | {_f(r['first_failed_per_s'])} | "
                     f"{r['why'] or '-'} | {r['limited_by'] or '-'} |")
    if cap.get("note"):
        lines += ["", cap["note"][0].upper() + cap["note"][1:] + "."]
    if cap.get("first_limit"):
        lines += ["", f"From {_n(cap['first_limit']['replicas'])} on, the {cap['first_limit']['limited_by']} was the "
                  "limit, not the replicas: more replicas stop paying there."]
    if cap.get("for"):
        f = cap["for"]
        lines += ["", f"**{f['load_per_s']:g} requests/s under {slo}: "
                  + (f"{f['replicas']} replicas**" if f["replicas"] else "no answer**") + f" ({f['detail']})."]
    return lines


def _n(replicas):
    return f"{replicas} replica" + ("" if replicas == 1 else "s")


def _counts(per_node):
    return " ".join(f"{n}:{c}" for n, c in sorted((per_node or {}).items())) or "-"


def plot(report, path):
    """Throughput and p99 against replicas, with the ideal (linear) line and the thresholds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = sorted(report["steps"], key=lambda s: s["replicas"])
    xs = [s["replicas"] for s in steps]
    thr = [s["requests_per_s"] for s in steps]
    per_replica = thr[0] / xs[0]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    ax.plot(xs, [per_replica * x for x in xs], "--", color="grey", label="ideal: N x throughput(1)")
    limits = [(s["replicas"], per_replica * s["replicas"] * s["threshold"]) for s in steps if s.get("threshold")]
    if limits:
        ax.plot(*zip(*limits), ":", color="tab:orange", label="minimum (E threshold)")
    ax.plot(xs, thr, "o-", color="tab:blue", label="throughput (median)")
    # max(0, ...): the median is rounded to 0.1, and may round past a spread's end
    lows = [max(0.0, y - (s.get("spread_per_s") or [y, y])[0]) for y, s in zip(thr, steps)]
    highs = [max(0.0, (s.get("spread_per_s") or [y, y])[1] - y) for y, s in zip(thr, steps)]
    if any(lows) or any(highs):
        ax.errorbar(xs, thr, yerr=[lows, highs], fmt="none", ecolor="tab:blue", capsize=4, label="spread of repeats")
    for x, y, s in zip(xs, thr, steps):
        ax.annotate(f"E={s['efficiency']:.2f}", (x, y), textcoords="offset points", xytext=(0, -14), ha="center",
                    fontsize=8, color="tab:blue")
    left = [s["replicas"] for s in (report.get("settings") or {}).get("left_out") or []]
    for x in left:
        ax.axvline(x, color="lightgrey", linestyle=":")
        ax.annotate("left out:\nno free CPU", (x, 0), textcoords="offset points", xytext=(0, 6), ha="center",
                    fontsize=8, color="grey")
    ax.set_xlabel("replicas")
    ax.set_ylabel("requests/s", color="tab:blue")
    ax.set_xticks(sorted(xs + left))
    ax.set_xlim(min(xs + left) - 0.5, max(xs + left) + 0.5)
    ax.set_ylim(0, max(thr + [per_replica * xs[-1]]) * 1.35)  # room for the legend above the lines
    ax2 = ax.twinx()
    p99 = [s["p99_ms"] or 0 for s in steps]
    ax2.plot(xs, p99, "s-", color="tab:red", label="p99 latency")
    ax2.set_ylabel("p99 latency (ms)", color="tab:red")
    ax2.set_ylim(0, max(p99 + [1]) * 2.2)  # p99 in the lower half, away from the throughput lines
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
    st = report["settings"]
    ax.set_title(f"{report['service']}: {st['model']}, {st['cpus']} CPU per replica, batching {st['batching']} "
                 f"({result(report)})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_capacity(report, path):
    """Sustained requests/s under the SLO against replicas, with the load asked about."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cap = report["capacity"]
    rows = [r for r in cap["rows"] if r["sustainable_per_s"]]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    if rows:
        xs = [r["replicas"] for r in rows]
        ax.plot(xs, [r["closed_loop_per_s"] for r in rows], "--", color="grey", label="closed-loop throughput")
        ax.plot(xs, [r["sustainable_per_s"] for r in rows], "o-", color="tab:green",
                label=f"sustained under p{cap['slo']['percentile']:g} <= {cap['slo']['bound_ms']:g} ms")
        ax.set_xticks(xs)
    if cap.get("for"):
        ax.axhline(cap["for"]["load_per_s"], color="tab:red", linestyle=":",
                   label=f"{cap['for']['load_per_s']:g} requests/s: {cap['for']['replicas']} replicas")
    ax.set_xlabel("replicas")
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{report['service']}: capacity under the SLO", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(report, directory):
    """Write report.json, report.md and (with a curve) scaling.png, (with --slo) capacity.png; return their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, "report.json"), os.path.join(directory, "report.md")]
    if report.get("steps"):
        paths.append(os.path.join(directory, "scaling.png"))
        plot(report, paths[-1])
    if report.get("capacity"):
        paths.append(os.path.join(directory, "capacity.png"))
        plot_capacity(report, paths[-1])
    with open(paths[0], "w") as f:
        json.dump({**report, "files": paths}, f, indent=2, default=str)
    with open(paths[1], "w") as f:
        f.write(markdown(report))
    return paths
