"""verify's CPU accounting: rates between two snapshots, bottlenecks, and the cgroup files read. No daemon."""
import os

from swarmml.verify import cpu as verify_io
from swarmml.verify import usage


def snap(at, containers, machine, thread_cpu, cores=2):
    return {"at": at, "containers": containers, "machine": machine, "cores": cores, "thread_cpu": thread_cpu}


def test_cpu_rates_and_bottlenecks():
    before = snap(0.0, {"replicas": {"a": (0, 0, 0), "b": (0, 0, 0)}, "gateway": {"g": (0, 0, 0)}}, (0.0, 0.0), 1.0)
    after = snap(10.0, {"replicas": {"a": (int(2.45e9), 99, 100), "b": (int(2.5e9), 100, 100)},
                        "gateway": {"g": (int(0.5e9), 0, 100)}}, (12.0, 20.0), 1.3)
    u = usage.rates(before, after)
    assert u["replicas"] == {"containers": 2, "measured": 2, "cores": 0.495, "per_container": [0.245, 0.25],
                             "throttled": 0.995}
    assert u["gateway"]["cores"] == 0.05 and u["load_generator"] == 0.03
    assert u["machine"] == {"cores": 2, "busy": 1.2, "other": 0.625}
    kind, why = usage.bottleneck(u, 0.25, 0.5)
    assert kind == "replicas" and "0.247 of their 0.25 CPU each" in why

    starved = snap(10.0, {"replicas": {"a": (int(2.0e9), 60, 100), "b": (int(2.1e9), 60, 100)},
                          "gateway": {"g": (int(1e9), 0, 100)}}, (19.6, 20.0), 1.5)
    kind, why = usage.bottleneck(usage.rates(before, starved), 0.25, 0.5)
    assert kind == "machine" and "1.96 of 2 cores busy" in why and "gateway 0.100" in why

    gw = snap(10.0, {"replicas": {"a": (int(1.5e9), 0, 100), "b": (int(1.5e9), 0, 100)},
                     "gateway": {"g": (int(4.8e9), 0, 100)}}, (10.0, 20.0), 1.5)
    assert usage.bottleneck(usage.rates(before, gw), 0.25, 0.5)[0] == "gateway"
    idle = snap(10.0, {"replicas": {"a": (int(1e9), 0, 100), "b": (int(1e9), 0, 100)},
                       "gateway": {"g": (int(0.1e9), 0, 100)}}, (5.0, 20.0), 1.2)
    assert usage.bottleneck(usage.rates(before, idle), 0.25, 0.5)[0] == "offered load"
    remote = snap(10.0, {"replicas": {"a": None, "b": None}, "gateway": {"g": None}}, None, 1.2)
    u = usage.rates(before, remote)
    assert u["replicas"]["cores"] is None and u["machine"]["busy"] is None
    assert usage.bottleneck(u, 0.25)[0] == "unknown"


def test_cpu_snapshot_reads_cgroup_v1_and_v2_files(tmp_path, monkeypatch):
    v1 = tmp_path / "v1"
    (v1 / "cpuacct" / "docker" / "abc").mkdir(parents=True)
    (v1 / "cpu" / "docker" / "abc").mkdir(parents=True)
    (v1 / "cpuacct" / "docker" / "abc" / "cpuacct.usage").write_text("123456789\n")
    (v1 / "cpu" / "docker" / "abc" / "cpu.stat").write_text("nr_periods 40\nnr_throttled 30\nthrottled_time 9\n")
    monkeypatch.setattr(verify_io, "CGROUP", str(v1))
    s = verify_io.cpu_snapshot({"replicas": ["abc", "gone"]})
    assert s["containers"] == {"replicas": {"abc": (123456789, 30, 40), "gone": None}}
    assert s["cores"] == os.cpu_count() and s["machine"][0] <= s["machine"][1] and s["thread_cpu"] > 0
    v2 = tmp_path / "v2"
    (v2 / "system.slice" / "docker-def.scope").mkdir(parents=True)
    (v2 / "system.slice" / "docker-def.scope" / "cpu.stat").write_text(
        "usage_usec 2000\nnr_periods 5\nnr_throttled 1\n")
    monkeypatch.setattr(verify_io, "CGROUP", str(v2))
    assert verify_io.cpu_snapshot({"r": ["def"]})["containers"]["r"]["def"] == (2_000_000, 1, 5)


def test_the_ballast_is_left_out_of_the_machine_busy_figure():
    before = {**snap(0.0, {"replicas": {"a": (0, 0, 0)}}, (0.0, 0.0), 1.0), "ballast": 100.0}
    after = {**snap(10.0, {"replicas": {"a": (int(2.5e9), 100, 100)}}, (19.0, 20.0), 1.1), "ballast": 114.0}
    u = usage.rates(before, after)
    # 1.9 of 2 cores busy, 1.4 of them the ballast's loops: the cluster and this process used 0.5
    assert u["machine"] == {"cores": 2, "busy": 0.5, "ballast": 1.4, "other": 0.24}
    assert usage.bottleneck(u, 0.25)[0] == "replicas"
    starved = {**after, "containers": {"replicas": {"a": (int(1.5e9), 50, 100)}}}
    assert usage.bottleneck(usage.rates(before, starved), 0.25)[0] == "offered load"  # not "machine"
