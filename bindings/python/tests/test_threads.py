"""The GIL is released while the core works (issue #25): another Python
thread runs during a fit, a bulk score and an extraction."""

import threading
import time

import numpy as np

import lsgm
from conftest import MODELS, SAMPLES, idx_images


def ticks_during(work):
    """Runs `work` on a thread while this one wakes every 2 ms; returns how
    many wake-ups fell inside the call and how long the call took (s). With
    the GIL held for the whole call this thread cannot run at all until it
    returns: at most a couple of wake-ups land before the call takes it."""
    span = {}

    def call():
        span["start"] = time.perf_counter()
        work()
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=call)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.002)
    worker.join()
    inside = [t for t in ticks if span["start"] < t < span["end"]]
    return len(inside), span["end"] - span["start"]


def check(work):
    n, seconds = ticks_during(work)
    # The call must be long enough for the check to mean something.
    assert seconds > 0.15, f"the call took {seconds:.3f} s: make it bigger"
    assert n >= 20, f"this thread ran {n} times during a {seconds:.2f} s call: is the GIL held?"


def test_fit_score_and_features_release_the_gil():
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(20000, 24)).astype(np.float32) for _ in range(2)]
    models = []
    check(lambda: models.append(lsgm.fit(x, components=8, threads=1)))
    big = [np.tile(a, (10, 1)) for a in x]
    check(lambda: models[0].score_samples(big, threads=1))
    frames = idx_images(SAMPLES / "fmnist-test-500-images-idx3-ubyte.gz", limit=500)
    net = lsgm.Network(MODELS / "fmnist-resnet.onnx", lsgm.Model.load(MODELS / "fmnist-resnet.lsgm"), threads=1)
    check(lambda: net.features(frames))
