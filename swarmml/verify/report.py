"""report.json, report.md and the plot."""
import json
import os


def markdown(report):
    lines = [f"# swarmml verify: {report['service']}", "",
             f"Result: **{'PASS' if report['ok'] else 'FAIL'}** "
             f"({report['cluster']['nodes']} nodes, {report['settings']['cpus']} CPU per replica, "
             f"model {report['settings']['model']}, batching {report['settings']['batching']})", "",
             "## Checks", "", "| check | ok | detail |", "| --- | --- | --- |"]
    for c in report["checks"]:
        lines.append(f"| {c['name']} | {'yes' if c['ok'] else 'NO'} | {c['detail']} |")
    if report.get("steps"):
        lines += ["", "## Scaling curve", "",
                  "| replicas | requests/s | p50 ms | p95 ms | p99 ms | errors | efficiency |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for s in report["steps"]:
            lines.append(f"| {s['replicas']} | {s['requests_per_s']:.1f} | {s['p50_ms']} | {s['p95_ms']} | "
                         f"{s['p99_ms']} | {s['errors']} | {s['efficiency']:.2f} |")
    if report.get("drill"):
        d = report["drill"]
        lines += ["", "## Node-loss drill", "",
                  f"Stopped {d['node']} under load: {d['failed']} of {d['requests']} requests failed "
                  f"({d['failed_pct']:.3f}%), desired replicas running again after {d['recovery_s']} s; "
                  f"after the node returned, rebalance: {d['rebalance']}."]
    if report.get("problems"):
        lines += ["", "## Problems", ""] + [f"- {p}" for p in report["problems"]]
    return "\n".join(lines) + "\n"


def plot(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = report["steps"]
    xs = [s["replicas"] for s in steps]
    thr = [s["requests_per_s"] for s in steps]
    base = thr[0] / xs[0] if xs and xs[0] else 0
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(xs, [base * x for x in xs], "--", color="grey", label="ideal (linear)")
    ax.plot(xs, thr, "o-", color="tab:blue", label="throughput")
    for x, y, s in zip(xs, thr, steps):
        ax.annotate(f"E={s['efficiency']:.2f}", (x, y), textcoords="offset points", xytext=(0, 8), ha="center",
                    fontsize=8)
    ax.set_xlabel("replicas")
    ax.set_ylabel("requests/s", color="tab:blue")
    ax.set_xticks(xs)
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(xs, [s["p99_ms"] or 0 for s in steps], "s-", color="tab:red", label="p99 latency")
    ax2.set_ylabel("p99 ms", color="tab:red")
    ax2.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
    ax.set_title(f"{report['service']}: throughput and p99 vs replicas "
                 f"({report['settings']['cpus']} CPU each)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(report, directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(directory, "report.md"), "w") as f:
        f.write(markdown(report))
    paths = [os.path.join(directory, "report.json"), os.path.join(directory, "report.md")]
    if report.get("steps"):
        plot(report, os.path.join(directory, "scaling.png"))
        paths.append(os.path.join(directory, "scaling.png"))
    return paths
