"""A user's own pipeline, from a plain wheel install to a scaled service and a new version, on the cluster.

As a data scientist would: swarmml's wheel in a fresh venv (not the checkout), an empty directory, a
pipeline fitted here on data that ships with scikit-learn plus a string column, dumped with skops;
then build --push, generate, deploy, scale to 6, and requests with named columns through the gateway.
A second version rolls out health-gated under load with 0 failed requests, and rollback returns.
"""
import glob
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import requests
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from stack_helpers import ROOT
from swarmml.verify.loadgen import Background

pytestmark = pytest.mark.integration
STACK, PORT = "it-own", 8097


def training_frame():
    """Iris as a frame, species as string labels, and a string column binned from petal length."""
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target").rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["petal_size"] = pd.cut(frame["petal_length"], [0, 2, 5, 10], labels=["small", "medium", "large"]).astype(str)
    labels = np.asarray(data.target_names)[data.target]
    return frame, labels


def fit(frame, labels, c):
    numeric = [col for col in frame.columns if col != "petal_size"]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["petal_size"]),
                             ("num", StandardScaler(), numeric)])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(C=c, max_iter=1000))]).fit(frame, labels)


def column_request(frame):
    """One tensor per column, as MLServer's pandas codec sends them."""
    inputs = []
    for col in frame.columns:
        values = frame[col].tolist()
        datatype = "FP64" if pd.api.types.is_numeric_dtype(frame[col]) else "BYTES"
        inputs.append({"name": col, "shape": [len(values), 1], "datatype": datatype, "data": values})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """swarmml's wheel installed in a fresh venv; the heavy dependencies come from this machine's site."""
    work = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), ROOT],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env_dir = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    wheel = glob.glob(str(work / "swarmml-*.whl"))[0]
    done = subprocess.run([str(env_dir / "bin" / "pip"), "install", "-q", "--no-deps", wheel],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    where = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                            "import swarmml, swarmml_model_service; print(swarmml.__file__, "
                            "swarmml_model_service.__file__)"], capture_output=True, text=True, cwd=str(work))
    assert where.stdout.count(str(env_dir)) == 2, where.stdout  # the wheel's copies, not the checkout's
    return env_dir


@pytest.fixture(scope="module")
def user(venv, cluster, tmp_path_factory):
    """Runs the venv's swarmml in an empty directory, against the test cluster."""
    home = tmp_path_factory.mktemp("user")

    def run(*args, check=True):
        done = subprocess.run([str(venv / "bin" / "swarmml"), *args], capture_output=True, text=True,
                              cwd=str(home), env=dict(cluster.env, GATEWAY_PORT=str(PORT)))
        if check:
            assert done.returncode == 0, f"swarmml {' '.join(args)}: {done.stderr[-3000:]}"
        return done
    run.home = home
    yield run
    run("rm", STACK, check=False)


def answers(url, body, n=1):
    out = []
    for _ in range(n):
        r = requests.post(f"{url}/v2/models/churn/infer", json=body, timeout=10)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def wait_version(url, version, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            meta = requests.get(f"{url}/v2/models/churn", timeout=5).json()
            if meta.get("versions") == [version]:
                return meta
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url}: /v2/models/churn never reported version {version}")


def test_own_pipeline_from_a_wheel_to_a_scaled_service_and_a_new_version(user, cluster):
    frame, labels = training_frame()
    v1, v2 = fit(frame, labels, 1.0), fit(frame, labels, 0.01)
    sio.dump(v1, str(user.home / "model.skops"))
    sio.dump(v2, str(user.home / "v2.skops"))

    started = time.monotonic()
    ref1 = user("build", "--model", "churn=model.skops", "--tag", "own1", "--push").stdout.strip().splitlines()[-1]
    first = time.monotonic() - started
    started = time.monotonic()
    assert user("build", "--model", "churn=model.skops", "--tag", "own1", "--push").stdout.strip().endswith(ref1)
    again = time.monotonic() - started
    print(f"\nown-model build: first {first:.1f} s, unchanged again {again:.1f} s")

    user("generate", "--name", STACK, "--tag", "own1", "--model", "churn", "--gateway-port", str(PORT),
         "-o", "stack.yml")
    assert (user.home / "gateway" / "haproxy.cfg").is_file()
    user("deploy", "stack.yml", "--timeout", "240")
    user("scale", "predictor", "6", "--stack", STACK)
    url = user("url", "gateway", "--stack", STACK).stdout.strip().splitlines()[-1]

    meta = wait_version(url, "own1")
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        (c, "BYTES" if c == "petal_size" else "FP64") for c in frame.columns]
    sample = frame.sample(40, random_state=3)
    expected = v1.predict(sample).tolist()
    replicas = set()
    for i in range(0, 40, 4):
        chunk = sample.iloc[i:i + 4]
        r = requests.post(f"{url}/v2/models/churn/infer", json=column_request(chunk), timeout=10)
        assert r.status_code == 200, r.text
        replicas.add(r.headers["x-replica"])
        out = {o["name"]: o for o in r.json()["outputs"]}["predict"]
        assert out["datatype"] == "BYTES" and out["data"] == expected[i:i + 4]
    assert len(replicas) >= 2, replicas

    # A new model version: built, rolled out health-gated under load, then rolled back.
    ref2 = user("build", "--model", "churn=v2.skops", "--tag", "own2", "--push").stdout.strip().splitlines()[-1]
    body = json.dumps(column_request(sample.iloc[:1]))
    with Background(f"{url}/v2/models/churn/infer", body, connections=4, rate=40) as load:
        time.sleep(1.0)
        user("update", "predictor", "--stack", STACK, "--image", ref2, "--timeout", "300")
        time.sleep(1.0)
    print(f"own-model update: {load.result.requests} requests, {load.result.errors} failed")
    assert load.result.requests > 100 and load.result.errors == 0, load.result.error_kinds
    wait_version(url, "own2")
    assert answers(url, column_request(sample))[0]["outputs"][0]["data"] == v2.predict(sample).tolist()

    with Background(f"{url}/v2/models/churn/infer", body, connections=4, rate=40) as load:
        time.sleep(1.0)
        user("rollback", "predictor", "--stack", STACK, "--timeout", "300")
        time.sleep(1.0)
    print(f"own-model rollback: {load.result.requests} requests, {load.result.errors} failed")
    assert load.result.requests > 50 and load.result.errors == 0, load.result.error_kinds
    wait_version(url, "own1")
