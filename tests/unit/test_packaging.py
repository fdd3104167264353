"""What a plain `pip install swarmml` gets: every package, the model service, and the image recipes."""
import paths
import configparser
import glob
import os
import subprocess
import sys
import zipfile

from setuptools import find_packages

ROOT = paths.ROOT


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    listed = cfg["options"]["packages"].split()
    found = find_packages(ROOT, include=["swarmml", "swarmml.*"])
    assert sorted(listed) == sorted(found + ["swarmml_model_service"])


def test_the_checkout_stacks_mount_the_packaged_gateway_config():
    link = os.path.join(ROOT, "stacks", "gateway", "haproxy.cfg")
    assert os.path.realpath(link) == os.path.join(ROOT, "swarmml", "data", "gateway", "haproxy.cfg")


def test_the_wheel_holds_the_model_service_and_the_image_recipes(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), ROOT],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = set(zipfile.ZipFile(glob.glob(str(tmp_path / "swarmml-*.whl"))[0]).namelist())
    for path in ("swarmml/data/predictor/Dockerfile", "swarmml/data/predictor/trusted-types.txt",
                 "swarmml/data/gateway/Dockerfile", "swarmml/data/gateway/haproxy.cfg",
                 "swarmml_model_service/app.py", "swarmml_model_service/signature.py",
                 "swarmml_model_service/train.py", "swarmml/build/artifacts.py"):
        assert path in names, path
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(glob.glob(str(tmp_path / "swarmml-*.whl"))[0]).read(metadata).decode()
    assert 'Requires-Dist: pandas>=2.0; extra == "serve"' in text
