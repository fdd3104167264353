#!/usr/bin/env python3
"""Benchmark: swarmml's model service against MLServer 1.7 (sklearn runtime), side by side, in one run.

Both serve the same models as single host processes pinned to the same core;
wrk (with a Lua POST body) runs on the other core. Two cases:

iris: the same iris models; requests/s, p50 and p99 at 8 and 32 connections
  with single-row requests; rows/s with 1000-row requests; time to ready.
columns: a pipeline over 10 named columns (3 strings, 7 numbers; see
  scripts/columns_case.py) taking a DataFrame, sent one row per request in
  MLServer's pandas codec form (content_type "pd", one tensor per column, BYTES
  for strings). The request bytes come from MLServer's own
  PandasCodec.encode_request (scripts/mlserver_encode.py in MLServer's venv)
  and are the same for both servers. Both servers' answers are checked against
  the pipeline's in-process predict/predict_proba; the servers are run in
  interleaved rounds (--rounds), reported as median and min-max.

observe: what metrics and the inference log cost the hot path (issue 16: at most
  5% of requests/s). Our server only, four variants up at once: metrics off
  (SWARMML_METRICS=off), metrics on (the default), metrics and the inference
  log (SWARMML_INFERENCE_LOG, no samples), and the log with 10% of requests'
  inputs and outputs; interleaved rounds load each once, in an order rotated
  from round to round. Reported as median (min-max) over the rounds, and each
  variant against "metrics off" as the median (min-max) of the per-round
  ratios, of requests/s and of requests per server CPU-second.

    python3 scripts/bench_inference.py [--case iris|columns|observe|all] [--duration 10] [--rounds 3]
        [--connections 8,32] [--out bench-inference.md]

MLServer is installed into its own venv under ~/.cache/swarmml-bench (never
into the project), with the scikit-learn version of this interpreter. Needs: wrk
(apt-get install wrk), taskset; pandas, scikit-learn, skops and joblib here.
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
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.expanduser("~/.cache/swarmml-bench")
# The operator's trust list as the image gets it (package data).
TRUSTED_TYPES_FILE = os.path.join(ROOT, "swarmml", "data", "predictor", "trusted-types.txt")
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
    # Both servers load artifacts pickled by this scikit-learn: the venv gets the same version.
    import sklearn
    theirs = subprocess.run([py, "-c", "import sklearn; print(sklearn.__version__)"], capture_output=True,
                            text=True).stdout.strip()
    if theirs != sklearn.__version__:
        subprocess.run([py, "-m", "pip", "install", "-q", f"scikit-learn=={sklearn.__version__}"], check=True)
    return os.path.join(MLSERVER_VENV, "bin", "mlserver")


def prepare_models(workdir):
    """Our skops models, and the same estimators as joblib files in MLServer's layout."""
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


def start_ours(models, extra_env=None):
    port = free_port()
    # A health port of its own too: the observe case runs several servers at once.
    env = dict(os.environ, SWARMML_MODELS_DIR=models, SWARMML_PORT=str(port), SWARMML_HEALTH_PORT=str(free_port()),
               SWARMML_HOST="127.0.0.1", SWARMML_TRUSTED_TYPES_FILE=TRUSTED_TYPES_FILE,
               **(extra_env or {}))
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


def iris_body(rows):
    return json.dumps({"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": "FP64", "data": [ROW] * rows}]})


def cpu_seconds(pid):
    """User+system CPU seconds of a process and all its descendants so far (0 for what has exited)."""
    tick = os.sysconf("SC_CLK_TCK")
    children, total = {}, 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append((int(entry), fields))
            if int(entry) == pid:
                total += (int(fields[11]) + int(fields[12])) / tick
    todo = [pid]
    while todo:
        for child, fields in children.get(todo.pop(), []):
            total += (int(fields[11]) + int(fields[12])) / tick
            todo.append(child)
    return total


def wrk(url, connections, duration, body, pid=None):
    """One wrk run POSTing the same body (a JSON string) over and over: requests/s, p50 and p99 in ms; with the
    server's pid, also the CPU seconds it used during the run and the machine's 1-minute load average before it."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        # A Lua long bracket of level 2: the JSON body contains "]]".
        f.write(f'wrk.method = "POST"\nwrk.body = [==[{body}]==]\nwrk.headers["Content-Type"] = "application/json"\n')
        script = f.name
    # A short warm-up first, so that both servers are measured hot.
    subprocess.run(["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", "-d2s", "-s", script, url],
                   capture_output=True)
    load = float(open("/proc/loadavg").read().split()[0])
    cpu0 = cpu_seconds(pid) if pid else None
    out = subprocess.run(["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-s", script, url], capture_output=True, text=True).stdout
    cpu = cpu_seconds(pid) - cpu0 if pid else None
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} failed responses")
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": _ms(out, "50%"), "p99": _ms(out, "99%"), "load": load, "cpu_s": cpu,
            "per_cpu_s": total / cpu if cpu else None}


def _ms(out, q):
    m = re.search(rf"{re.escape(q)}\s+([\d.]+)(us|ms|s)", out)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def iris_cases(models):
    """The same load on each model (single rows at 8 and 32 connections), then 1000-row requests."""
    one = iris_body(1)
    cases = [(model, model, c, one) for model in models for c in (8, 32)]
    return cases + [("iris-rf 1000 rows", "iris-rf", 4, iris_body(1000))]


def measure(server, proc, url, cases, duration):
    """wrk for each case (label, model, connections, body) against one server; stops proc."""
    rows = []
    try:
        for label, model, c, body in cases:
            rows.append((server, label, c, wrk(f"{url}/v2/models/{model}/infer", c, duration, body, proc.pid)))
    finally:
        stop(proc)
    return rows


# --- the per-column case ----------------------------------------------------------------------------------
# A pipeline over 10 named columns (3 strings, 7 numbers; scripts/columns_case.py) served from a DataFrame:
# ours from the contract's layout with a signature in meta.json, MLServer's sklearn runtime decoding the
# pandas codec. Both get the very same request bytes, made by MLServer's PandasCodec.encode_request.
CHECK_ROWS = range(0, 569, 29)      # 20 rows whose answers are checked on both servers
BENCH_ROW = 0                       # the row of the benchmarked 1-row request
MLSERVER_BATCHING = (32, 0.005)     # max_batch_size, max_batch_time (s) of the batched MLServer variant


def columns_signature(pipe, frame):
    """The signature in meta.json, as `swarmml build` records it from a sample of the frame."""
    from swarmml_model_service.signature import infer_signature
    return infer_signature(pipe, frame.head(50)), "swarmml_model_service.signature.infer_signature"


def prepare_columns_models(workdir, pipe, frame):
    import joblib
    import sklearn
    import skops.io as sio
    from swarmml_model_service.models import sha256_file
    from columns_case import MODEL_NAME
    signature, sig_source = columns_signature(pipe, frame)
    ours = os.path.join(workdir, "columns-ours")
    mdir = os.path.join(ours, MODEL_NAME)
    os.makedirs(mdir)
    path = os.path.join(mdir, "model.skops")
    sio.dump(pipe, path)
    with open(path + ".sha256", "w") as f:
        f.write(f"{sha256_file(path)}  model.skops\n")
    with open(os.path.join(mdir, "meta.json"), "w") as f:
        json.dump({"version": "1", "batching": True, "sklearn_version": sklearn.__version__,
                   "n_features": len(frame.columns), "signature": signature}, f, indent=2)
    peers = {}
    # MLServer as its users run it, and with its adaptive batching on (as the iris case's iris-rf-batched).
    for variant, batch in (("", None), ("-batched", MLSERVER_BATCHING)):
        peer = os.path.join(workdir, "columns-mlserver" + variant)
        pdir = os.path.join(peer, MODEL_NAME)
        os.makedirs(pdir)
        joblib.dump(pipe, os.path.join(pdir, "model.joblib"))
        # As MLServer's docs configure a model that takes a DataFrame: the model's default request content type
        # is "pd" (the requests carry it too; theirs takes precedence).
        settings = {"name": MODEL_NAME, "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": "1", "content_type": "pd"}}
        if batch:
            settings["max_batch_size"], settings["max_batch_time"] = batch
        json.dump(settings, open(os.path.join(pdir, "model-settings.json"), "w"), indent=2)
        peers[variant] = peer
    return ours, peers, signature, sig_source


def mlserver_python():
    return os.path.join(MLSERVER_VENV, "bin", "python")


def encode_with_mlserver(spec):
    """Request bodies from MLServer's own PandasCodec (scripts/mlserver_encode.py in MLServer's venv)."""
    out = subprocess.run([mlserver_python(), os.path.join(ROOT, "scripts", "mlserver_encode.py")],
                         input=json.dumps(spec), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"mlserver_encode.py failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def post(url, body):
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: HTTP {exc.code}: {exc.read()[:500]!r}") from None


def output_values(response, name):
    """The values of one output, whatever form the server gave it in (a flat V2 tensor for both here)."""
    import numpy as np
    for out in response.get("outputs", []):
        if out.get("name") == name:
            return np.asarray(out["data"]).reshape(out["shape"]) if out.get("shape") else np.asarray(out["data"])
    raise RuntimeError(f"no output {name!r} in {json.dumps(response)[:300]}")


def check_answers(server, url, bodies, expected):
    """Each request's predict and predict_proba equal the pipeline's in-process ones; raises otherwise."""
    import numpy as np
    from columns_case import MODEL_NAME
    infer = f"{url}/v2/models/{MODEL_NAME}/infer"
    for body, (pred, proba) in zip(bodies, expected):
        got = output_values(post(infer, json.dumps(body)), "predict")
        if got.ravel().tolist() != pred.ravel().tolist():
            raise RuntimeError(f"{server}: predict {got.ravel().tolist()} != in-process {pred.ravel().tolist()}")
        got = output_values(post(infer, json.dumps(dict(body, outputs=[{"name": "predict_proba"}]))),
                            "predict_proba")
        if got.shape != proba.shape or not np.allclose(got, proba, rtol=1e-9, atol=1e-12):
            raise RuntimeError(f"{server}: predict_proba {got.tolist()} != in-process {proba.tolist()}")
    return len(bodies)


def run_columns(mlserver, work, duration, rounds, connections):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import columns_case as cc
    pipe, frame, _ = cc.fitted_pipeline()
    ours_dir, peer_dirs, signature, sig_source = prepare_columns_models(work, pipe, frame)
    indices = [BENCH_ROW] + [i for i in CHECK_ROWS if i != BENCH_ROW]
    spec = dict(cc.frame_spec(frame, indices), requests=[[k] for k in range(len(indices))])
    encoded = encode_with_mlserver(spec)
    bodies = encoded["requests"]
    expected = [(pipe.predict(frame.iloc[[i]]), pipe.predict_proba(frame.iloc[[i]])) for i in indices]
    bench_body = json.dumps(bodies[0])
    cases = [(cc.MODEL_NAME, cc.MODEL_NAME, c, bench_body) for c in connections]
    servers = {
        # Ours as built (meta.json batching: true), and with the operator's switch SWARMML_BATCHING=off.
        "swarmml": lambda: start_ours(ours_dir)[:3],
        "swarmml batching off": lambda: start_ours(ours_dir, {"SWARMML_BATCHING": "off"})[:3],
        "MLServer 1.7.1": lambda: start_mlserver(mlserver, peer_dirs[""]),
        f"MLServer 1.7.1 adaptive batching {MLSERVER_BATCHING[0]}/{MLSERVER_BATCHING[1] * 1000:g} ms":
            lambda: start_mlserver(mlserver, peer_dirs["-batched"]),
    }
    results, checked = [], {}
    for r in range(rounds):
        # Interleaved, and the order flips each round: neither server always runs first (or hot after the other).
        for name in (list(servers) if r % 2 == 0 else list(servers)[::-1]):
            proc, url, _ = servers[name]()
            try:
                checked[name] = check_answers(name, url, bodies, expected)
            except Exception:
                stop(proc)
                raise
            for row in measure(name, proc, url, cases, duration):
                results.append((r,) + row)
            print(f"round {r + 1}/{rounds} {name}: " + ", ".join(
                f"c={c} {m['rps']:.0f} req/s p99 {m['p99']:.2f} ms" for _, _, _, c, m in results[-len(cases):]),
                file=sys.stderr)
    return columns_report(results, list(servers), connections, rounds, duration, checked, bench_body,
                          encoded["mlserver_version"], sig_source, signature)


def _spread(values, fmt):
    import statistics
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def columns_report(results, servers, connections, rounds, duration, checked, bench_body, codec_version,
                   sig_source, signature):
    import statistics
    import sklearn
    by = {}
    for _, server, _, c, m in results:
        by.setdefault((server, c), []).append(m)
    ours_all = [s for s in servers if s.startswith("swarmml")]
    peers = [s for s in servers if s not in ours_all]
    lines = [f"Per-column requests: 1 row of 10 columns (3 BYTES, 7 FP64) per request, {rounds} interleaved rounds "
             f"of {duration} s per server and connection count; median (min–max) over the rounds.", "",
             "| server | connections | requests/s | p50 ms | p99 ms | requests per server CPU-s | server CPU % "
             "of its core | load avg before |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in connections:
        for server in servers:
            ms = by[(server, c)]
            lines.append(f"| {server} | {c} | {_spread([m['rps'] for m in ms], '.0f')} | "
                         f"{_spread([m['p50'] for m in ms], '.2f')} | {_spread([m['p99'] for m in ms], '.2f')} | "
                         f"{_spread([m['per_cpu_s'] for m in ms], '.0f')} | "
                         f"{_spread([100 * m['cpu_s'] / duration for m in ms], '.0f')} | "
                         f"{_spread([m['load'] for m in ms], '.1f')} |")
    lines += ["", "| connections | ours | against | requests/s ours / it | p99 ours / it | requests per CPU-s "
                  "ours / it |", "| ---: | --- | --- | ---: | ---: | ---: |"]
    for c in connections:
        med = {s: {k: statistics.median(m[k] for m in by[(s, c)]) for k in ("rps", "p99", "per_cpu_s")}
               for s in servers}
        for ours in ours_all:
            for peer in peers:
                lines.append(f"| {c} | {ours} | {peer} | {med[ours]['rps'] / med[peer]['rps']:.2f}x | "
                             f"{med[ours]['p99'] / med[peer]['p99']:.2f}x | "
                             f"{med[ours]['per_cpu_s'] / med[peer]['per_cpu_s']:.2f}x |")
    lines += ["", "Ratios are of the medians. Requests per server CPU-second (the server's own user+system time "
                  "during the run) is the measure least moved by other load on the machine; "
                  "server CPU % under 100 means the server was starved or waiting."]
    lines += ["", f"- Request body ({len(bench_body)} bytes), the same bytes to both servers, made by MLServer "
                  f"{codec_version}'s `PandasCodec.encode_request(df, use_bytes=False).model_dump(exclude_none=True)`.",
              f"- Answers checked before each round's load: predict and predict_proba of "
              f"{', '.join(f'{s} {n}' for s, n in checked.items())} requests equal the pipeline's in-process ones.",
              f"- Ours: skops artifact, meta.json batching true (server defaults: at most 64 rows, 0.5 ms wait; "
              f"'batching off' is SWARMML_BATCHING=off), signature from {sig_source}: "
              f"`{json.dumps(signature)}`.",
              "- MLServer: mlserver-sklearn, joblib artifact, model-settings parameters content_type \"pd\", "
              "parallel_workers 0; the batched variant adds max_batch_size/max_batch_time.",
              f"- One server process at a time pinned to core {SERVER_CORE}, wrk (1 thread) on core {LOAD_CORE}; "
              f"scikit-learn {sklearn.__version__} on both sides."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out", default=None)
    ap.add_argument("--case", choices=("iris", "columns", "observe", "all"), default="all")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per server (columns case)")
    ap.add_argument("--connections", default="8,32", help="comma list (columns case)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    mlserver = ensure_mlserver() if args.case != "observe" else None
    work = tempfile.mkdtemp(prefix="swarmml-bench-")
    text = ""
    if args.case == "observe":
        text += run_observe(work, args.duration, args.rounds, [int(c) for c in args.connections.split(",")])
    if args.case in ("iris", "all"):
        text += run_iris(mlserver, work, args.duration)
    if args.case in ("columns", "all"):
        text += ("\n" if text else "") + run_columns(
            mlserver, work, args.duration, args.rounds, [int(c) for c in args.connections.split(",")])
    print(text)
    if args.out:
        open(args.out, "w").write(text)
    shutil.rmtree(work, ignore_errors=True)


def run_iris(mlserver, work, duration):
    ours_dir, peer_dir = prepare_models(work)
    rows = []
    proc, url, ours_ready, _ = start_ours(ours_dir)
    rows += measure("swarmml", proc, url, iris_cases(("iris-logreg", "iris-rf")), duration)
    proc, url, peer_ready = start_mlserver(mlserver, peer_dir)
    rows += measure("MLServer 1.7.1", proc, url, iris_cases(("iris-logreg", "iris-rf", "iris-rf-batched")),
                    duration)

    lines = ["| server | model | connections | requests/s | rows/s | p50 ms | p99 ms |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for server, model, c, r in rows:
        n = 1000 if "1000" in model else 1
        lines.append(f"| {server} | {model} | {c} | {r['rps']:.0f} | {r['rps'] * n:.0f} | "
                     f"{r['p50']:.2f} | {r['p99']:.2f} |")
    lines += ["", f"Process start to ready: swarmml {ours_ready:.2f} s, MLServer {peer_ready:.2f} s "
                  "(MLServer's models load after that)."]
    return "\n".join(lines) + "\n"


def observe_variants(work):
    # Two files: the two logging servers run at once, with one hostname (the file's replica part).
    logs = os.path.join(work, "inference-log")
    return [("metrics off", {"SWARMML_METRICS": "off"}),
            ("metrics on (default)", {}),
            ("metrics + inference log", {"SWARMML_INFERENCE_LOG": os.path.join(logs, "plain.jsonl")}),
            ("metrics + inference log, 10% sampled", {"SWARMML_INFERENCE_LOG": os.path.join(logs, "sampled.jsonl"),
                                                      "SWARMML_INFERENCE_LOG_SAMPLE": "0.1"})]


def run_observe(work, duration, rounds, connections):
    """Every variant's server up at once (an idle one costs nothing), then rounds of one short wrk run per
    variant, in an order rotated from round to round: load from elsewhere on the machine that comes and
    goes over minutes falls on every variant alike."""
    import statistics
    from benchstats import median_interval
    from swarmml_model_service.train import train
    models = os.path.join(work, "ours")
    train(models)
    variants = observe_variants(work)
    body = iris_body(1)
    servers = {}
    results = {}  # (variant, connections) -> [wrk result per round]
    try:
        for name, env in variants:
            proc, url, _, _ = start_ours(models, env)
            servers[name] = (proc, url)
        for r in range(rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for c in connections:
                for name, _ in order:
                    proc, url = servers[name]
                    m = wrk(f"{url}/v2/models/iris-rf/infer", c, duration, body, proc.pid)
                    results.setdefault((name, c), []).append(m)
                    print(f"round {r + 1}/{rounds} c={c} {name}: {m['rps']:.0f} req/s, "
                          f"{m['per_cpu_s']:.0f} per CPU-s", file=sys.stderr, flush=True)
    finally:
        for proc, _ in servers.values():
            stop(proc)
    logged = sum(1 for f in os.listdir(os.path.join(work, "inference-log"))
                 for _ in open(os.path.join(work, "inference-log", f)))
    base = variants[0][0]
    lines = [f"Metrics and inference-log cost: iris-rf, 1 row per request, {rounds} interleaved rounds of "
             f"{duration} s per variant; median (min–max) over the rounds.", "",
             "| variant | connections | requests/s | p50 ms | p99 ms | requests per server CPU-s | "
             f"requests/s vs {base} (per-round ratios) | per CPU-s vs {base} (per-round ratios) | "
             "per CPU-s ratio: median, 95% bootstrap interval |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in connections:
        for name, _ in variants:
            ms, bs = results[(name, c)], results[(base, c)]
            rps = [m["rps"] / b["rps"] for m, b in zip(ms, bs)]
            cpu = [m["per_cpu_s"] / b["per_cpu_s"] for m, b in zip(ms, bs)]
            lines.append(f"| {name} | {c} | {_spread([m['rps'] for m in ms], '.0f')} | "
                         f"{_spread([m['p50'] for m in ms], '.2f')} | {_spread([m['p99'] for m in ms], '.2f')} | "
                         f"{_spread([m['per_cpu_s'] for m in ms], '.0f')} | "
                         f"{statistics.median(rps):.3f} ({min(rps):.3f}–{max(rps):.3f}) | "
                         f"{statistics.median(cpu):.3f} ({min(cpu):.3f}–{max(cpu):.3f}) | "
                         "{:.3f} [{:.3f}, {:.3f}] |".format(*median_interval(cpu)))
    lines += ["", f"- The four servers up at once, each a process pinned to core {SERVER_CORE}, only one under load "
                  f"at a time; wrk (1 thread, 2 s warm-up before each run) on core {LOAD_CORE}.",
              f"- The logging variants wrote {logged} lines in all, into files of their own.",
              "- Requests per server CPU-second (the server's own user+system time during the run) is the "
              "measure least moved by other load on the machine.",
              f"- Load average before the runs: {_spread([m['load'] for ms in results.values() for m in ms], '.1f')}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
