#!/usr/bin/env python3
"""Benchmark: swarmml's model service against MLServer 1.7 (sklearn runtime), side by side, in one run.

Both serve the same iris models as single host processes pinned to the same
core; wrk (with a Lua POST body) runs on the other core. Measured:
requests/s, p50 and p99 at 8 and 32 connections with single-row requests;
rows/s with 1000-row requests; time from process start to ready.

    python3 scripts/bench_inference.py [--duration 10] [--out bench-inference.md]

MLServer is installed into its own venv under ~/.cache/swarmml-bench (never
into the project). Needs: wrk (apt-get install wrk), taskset.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICE_DIR = os.path.join(ROOT, "model_service")
CACHE = os.path.expanduser("~/.cache/swarmml-bench")
MLSERVER_VENV = os.path.join(CACHE, "mlserver-venv")
SERVER_CORE, LOAD_CORE = "1", "0"
ROW = [5.1, 3.5, 1.4, 0.2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_mlserver():
    py = os.path.join(MLSERVER_VENV, "bin", "python")
    if not os.path.exists(os.path.join(MLSERVER_VENV, "bin", "mlserver")):
        subprocess.run([sys.executable, "-m", "venv", MLSERVER_VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "mlserver==1.7.1", "mlserver-sklearn==1.7.1"], check=True)
    return os.path.join(MLSERVER_VENV, "bin", "mlserver")


def prepare_models(workdir):
    """Our skops models, and the same estimators as joblib files in MLServer's layout."""
    sys.path.insert(0, SERVICE_DIR)
    from swarmml_model_service.train import train
    import joblib
    import skops.io as sio
    ours = os.path.join(workdir, "ours")
    train(ours)
    peer = os.path.join(workdir, "mlserver")
    for name in ("iris-logreg", "iris-rf"):
        est = sio.load(os.path.join(ours, name, "model.skops"), trusted=sio.get_untrusted_types(
            file=os.path.join(ours, name, "model.skops")))
        for variant, batching in (("", None), ("-batched", (32, 0.005))):
            if batching and name != "iris-rf":
                continue
            mdir = os.path.join(peer, name + variant)
            os.makedirs(mdir, exist_ok=True)
            joblib.dump(est, os.path.join(mdir, "model.joblib"))
            settings = {"name": name + variant, "implementation": "mlserver_sklearn.SKLearnModel",
                        "parameters": {"uri": "./model.joblib", "version": "1"}}
            if batching:
                settings["max_batch_size"], settings["max_batch_time"] = batching
            json.dump(settings, open(os.path.join(mdir, "model-settings.json"), "w"))
    return ours, peer


def wait_ready(url, proc, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read()[-2000:] if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready in {timeout} s")


def start_ours(models):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=SERVICE_DIR, SWARMML_MODELS_DIR=models, SWARMML_PORT=str(port),
               SWARMML_HOST="127.0.0.1", SWARMML_TRUSTED_TYPES_FILE=os.path.join(SERVICE_DIR, "trusted-types.txt"))
    t0 = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, sys.executable, "-m", "swarmml_model_service"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", proc)
    return proc, f"http://127.0.0.1:{port}", ready, t0


def start_mlserver(mlserver, models):
    port, grpc, metrics = free_port(), free_port(), free_port()
    json.dump({"http_port": port, "grpc_port": grpc, "metrics_port": metrics, "parallel_workers": 0,
               "host": "127.0.0.1"}, open(os.path.join(models, "settings.json"), "w"))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, mlserver, "start", models], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", proc)
    # Models load after the server says ready; wait for each.
    for name in os.listdir(models):
        if os.path.isdir(os.path.join(models, name)):
            wait_ready(f"http://127.0.0.1:{port}/v2/models/{name}/ready", proc)
    return proc, f"http://127.0.0.1:{port}", ready


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def wrk(url, connections, duration, rows):
    body = json.dumps({"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": "FP64",
                                   "data": [ROW] * rows}]})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        # A Lua long bracket of level 2: the JSON body contains "]]".
        f.write(f'wrk.method = "POST"\nwrk.body = [==[{body}]==]\nwrk.headers["Content-Type"] = "application/json"\n')
        script = f.name
    # A short warm-up first, so that both servers are measured hot.
    subprocess.run(["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", "-d2s", "-s", script, url],
                   capture_output=True)
    out = subprocess.run(["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-s", script, url], capture_output=True, text=True).stdout
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} failed responses")
    return {"rps": rps, "p50": _ms(out, "50%"), "p99": _ms(out, "99%")}


def _ms(out, q):
    m = re.search(rf"{re.escape(q)}\s+([\d.]+)(us|ms|s)", out)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def measure(server, proc, url, models, duration):
    """The same load on each model (single rows at 8 and 32 connections), then 1000-row requests; stops proc."""
    rows = []
    try:
        for model in models:
            for c in (8, 32):
                rows.append((server, model, c, wrk(f"{url}/v2/models/{model}/infer", c, duration, 1)))
        rows.append((server, "iris-rf 1000 rows", 4, wrk(f"{url}/v2/models/iris-rf/infer", 4, duration, 1000)))
    finally:
        stop(proc)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    mlserver = ensure_mlserver()
    work = tempfile.mkdtemp(prefix="swarmml-bench-")
    ours_dir, peer_dir = prepare_models(work)
    rows = []
    proc, url, ours_ready, _ = start_ours(ours_dir)
    rows += measure("swarmml", proc, url, ("iris-logreg", "iris-rf"), args.duration)
    proc, url, peer_ready = start_mlserver(mlserver, peer_dir)
    rows += measure("MLServer 1.7.1", proc, url, ("iris-logreg", "iris-rf", "iris-rf-batched"), args.duration)

    lines = ["| server | model | connections | requests/s | rows/s | p50 ms | p99 ms |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for server, model, c, r in rows:
        n = 1000 if "1000" in model else 1
        lines.append(f"| {server} | {model} | {c} | {r['rps']:.0f} | {r['rps'] * n:.0f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    lines += ["", f"Process start to ready: swarmml {ours_ready:.2f} s, MLServer {peer_ready:.2f} s "
                  "(MLServer's models load after that)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        open(args.out, "w").write(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
