"""Runs as Ray tasks: the driver writes the cache, results are bit-identical in process, on one worker and
on two, a run that raises is reported with its traceback, a killed worker is retried, and two Ray nodes
started with ``ray start`` on this machine run a chapter's runs without touching the workers' disks.

The runs are chapter 2's forecaster on a tiny config (a few seconds each). Each Ray test starts its own
instance (about 10 s on 2 cores) and leaves none behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from attnbook import runs
from attnbook.errors import InvalidInputError
from attnbook.timeseries.experiment import RunConfig, train_forecaster
from attnbook.train import RunCache, TrainConfig

ray = pytest.importorskip("ray")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # this module's train functions travel by value

CHAPTER = "distribution-effects"


def _config(seed: int) -> RunConfig:
    return RunConfig("RandomWalk", series_len=600, train=TrainConfig(steps=12, batch_size=8, warmup=2, eval_every=6, seed=seed))


def _run(seed: int, train=train_forecaster, *extra) -> runs.Run:
    config = _config(seed)
    return runs.Run(CHAPTER, f"RandomWalk seed {seed}", seed, train, (config, *extra), entries=(RunCache.of("distribution", config.to_dict()),))


def _files(cache: Path) -> dict[str, object]:
    """Every file of a cache, the weights as bytes and the history without its wall time."""
    out = {}
    for path in sorted(cache.rglob("*")):
        if path.is_file():
            key = str(path.relative_to(cache))
            if path.name == "history.json":
                record = json.loads(path.read_text())
                record["history"].pop("seconds")
                out[key] = record
            else:
                out[key] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def ray_instance():
    """``start(num_cpus)``: a local instance on ``num_cpus`` (kept between tests that ask for the same
    number: each start costs seconds), shut down after the module."""
    current: list[int] = []

    def start(num_cpus: int) -> None:
        if current != [num_cpus] or not ray.is_initialized():
            runs.shutdown()
            runs.connect(num_cpus=num_cpus)
            current[:] = [num_cpus]
    yield start
    runs.shutdown()


def _execute_into(cache: Path, monkeypatch, seeds=(0, 1), **kw) -> list[runs.RunTiming]:
    monkeypatch.setenv("ATTNBOOK_CACHE", str(cache))
    return runs.execute([_run(s) for s in seeds], progress=False, **kw)


def _raise(config: RunConfig) -> None:
    raise ValueError(f"no data for {config.generator}")


@pytest.mark.parametrize("on_ray", [False, True])
def test_a_run_that_raises_names_its_chapter_label_and_seed_with_the_workers_traceback(tmp_path, monkeypatch, ray_instance, on_ray):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    monkeypatch.setenv("ATTNBOOK_RAY", "1" if on_ray else "0")
    if on_ray:
        ray_instance(1)
    with pytest.raises(runs.RunFailedError) as err:
        runs.execute([_run(3, _raise)], progress=False)
    text = str(err.value)
    assert "distribution-effects: RandomWalk seed 3 failed (chapter distribution-effects, seed 3, ValueError on " in text
    assert "Traceback (most recent call last)" in text and "in _raise" in text and "ValueError: no data for RandomWalk" in text
    assert not any(tmp_path.rglob("*.safetensors")) and not any(tmp_path.rglob("*.json"))  # nothing partial enters the cache


def _train_after_reporting_pid(config: RunConfig, folder: str) -> None:
    """Write this worker's pid where the test can read it, wait for the test to kill it once, then train."""
    folder = Path(folder)
    (folder / "pid").write_text(str(os.getpid()))
    if not (folder / "killed").exists():
        time.sleep(30)  # the test kills this process now; the retry finds "killed" and goes on
    train_forecaster(config)


def test_a_killed_worker_is_retried_and_the_result_is_the_same(tmp_path, monkeypatch, ray_instance):
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    _execute_into(tmp_path / "inline", monkeypatch, seeds=(0,))
    monkeypatch.setenv("ATTNBOOK_RAY", "1")
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "ray"))
    ray_instance(1)
    signals = tmp_path / "signals"
    signals.mkdir()
    killed: list[int] = []

    def kill_the_worker() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not (signals / "pid").exists():
            time.sleep(0.05)
        pid = int((signals / "pid").read_text())
        (signals / "killed").touch()
        assert not any((tmp_path / "ray").rglob("*.safetensors"))  # mid-run: nothing in the cache yet
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    (timing,) = runs.execute([_run(0, _train_after_reporting_pid, str(signals))], progress=False)
    killer.join()
    assert killed and int((signals / "pid").read_text()) != killed[0]  # a new worker ran the retry
    assert not timing.cached and _files(tmp_path / "ray") == _files(tmp_path / "inline")


def test_a_worker_that_dies_more_often_than_allowed_fails_the_run(tmp_path, monkeypatch, ray_instance):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    monkeypatch.setenv("ATTNBOOK_RAY", "1")
    ray_instance(1)
    with pytest.raises(runs.RunFailedError, match="RandomWalk seed 0 failed .*WorkerCrashedError"):
        runs.execute([_run(0, _die)], progress=False, max_retries=0)
    assert not any(tmp_path.rglob("*.safetensors"))


def _die(config: RunConfig) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_run_is_bit_identical_in_process_on_one_worker_and_on_two(tmp_path, monkeypatch, ray_instance):
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    inline = _execute_into(tmp_path / "inline", monkeypatch)
    assert [t.where for t in inline] == ["in process"] * 2 and not any(t.cached for t in inline)
    monkeypatch.setenv("ATTNBOOK_RAY", "1")
    ray_instance(1)
    one = _execute_into(tmp_path / "one", monkeypatch)
    ray_instance(2)
    two = _execute_into(tmp_path / "two", monkeypatch)
    assert all(t.where.startswith("127.0.0.1 node ") for t in one + two)  # a local instance stays on the loopback address
    reference = _files(tmp_path / "inline")
    assert len(reference) == 4 and any(k.endswith("model.safetensors") for k in reference)
    assert _files(tmp_path / "one") == reference and _files(tmp_path / "two") == reference
    again = _execute_into(tmp_path / "two", monkeypatch)  # everything cached: nothing runs
    assert all(t.cached and t.where == "cache" for t in again)


_DRIVER = """
import json, sys
from attnbook import runs
sys.path.insert(0, {tests!r})
import test_runs
timings = runs.execute([test_runs._run(s) for s in (0, 1)], progress=False)
print(json.dumps([t.where for t in timings]))
"""


def test_two_ray_nodes_started_with_ray_start_run_the_runs_and_only_the_driver_writes(tmp_path, monkeypatch):
    """``ray start --head`` and ``ray start --address`` on this machine (each node one CPU, its own
    ``ATTNBOOK_CACHE`` that must stay empty), a driver with ``RAY_ADDRESS``: both nodes run a run, the
    driver's cache gets both entries, bit-identical to the in-process ones."""
    port = 20000 + os.getpid() % 20000
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ATTNBOOK_"))}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    node_env = {**env, "ATTNBOOK_CACHE": str(tmp_path / "node-cache")}
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--block"]
    head = subprocess.Popen([ray_bin, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common], env=node_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        status = [ray_bin, "status", "--address", address]
        deadline = time.time() + 120
        while subprocess.run(status, env=env, capture_output=True).returncode != 0:
            assert time.time() < deadline and head.poll() is None, "the head node did not start"
            time.sleep(1)
        nodes.append(subprocess.Popen([ray_bin, "start", "--address", address, *common], env=node_env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        while "2 node" not in _alive(status, env):
            assert time.time() < deadline and nodes[1].poll() is None, "the second node did not join"
            time.sleep(1)
        driver_env = {**env, "RAY_ADDRESS": address, "ATTNBOOK_CACHE": str(tmp_path / "driver-cache"),
                      "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-c", _DRIVER.format(tests=str(Path(__file__).parent))], env=driver_env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        where = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
    assert len(set(where)) == 2, where  # one run on each node
    assert not (tmp_path / "node-cache").exists()  # the workers never used their own cache folder
    monkeypatch.setenv("ATTNBOOK_RAY", "0")
    _execute_into(tmp_path / "inline", monkeypatch)
    assert _files(tmp_path / "driver-cache") == _files(tmp_path / "inline")


def _alive(status: list[str], env: dict) -> str:
    text = subprocess.run(status, env=env, capture_output=True, text=True).stdout
    active = text.split("Active:")[1].split("Pending:")[0] if "Active:" in text else ""
    return f"{active.count('node_')} node"


def test_a_run_is_declared_with_a_module_level_function_and_its_cache_entries():
    config = _config(0)
    entry = RunCache.of("distribution", config.to_dict())
    with pytest.raises(InvalidInputError, match="module-level"):
        runs.Run(CHAPTER, "x", 0, lambda c: None, (config,), entries=(entry,))
    with pytest.raises(InvalidInputError, match="entries"):
        runs.Run(CHAPTER, "x", 0, train_forecaster, (config,))
    with pytest.raises(InvalidInputError, match="seed"):
        runs.Run(CHAPTER, "x", -1, train_forecaster, (config,), entries=(entry,))
    with pytest.raises(InvalidInputError, match="runs"):
        runs.execute(["not a run"])
    assert runs.Run(CHAPTER, "RandomWalk seed 0", 0, train_forecaster, (config,), entries=(entry,)).name == f"{CHAPTER}: RandomWalk seed 0"
