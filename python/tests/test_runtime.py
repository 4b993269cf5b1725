"""How the engine runs under Python: without the GIL, stoppable by Ctrl-C, on the GPU where
there is one."""

import os
import signal
import threading
import time

import pytest

import detbal
from conftest import SAMPLE


def test_the_gil_is_released_while_the_engine_runs(in_repo):
    """Python code runs in the main thread while another thread's analysis is in the engine:
    with the GIL held, the loop below could not turn until the analysis returned."""
    done = []
    worker = threading.Thread(target=lambda: done.append(detbal.analyze(SAMPLE, device="cpu", bootstrap=50)))
    worker.start()
    turns = 0
    while worker.is_alive():
        turns += 1
        time.sleep(0.001)
    worker.join()
    assert len(done) == 1
    assert turns >= 20


def test_ctrl_c_stops_the_analysis_between_stages(in_repo):
    """SIGINT shortly after the start: the engine asks Python between stages, stops after the
    stage that was running, and Python's KeyboardInterrupt comes out with a note naming it.
    Python's own handler is installed for the test: a shell starts a background job with SIGINT
    ignored, and Python then keeps it ignored (the test ran the whole analysis)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            detbal.analyze(SAMPLE, device="cpu", bootstrap=2_000)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    notes = getattr(caught.value, "__notes__", [])
    assert len(notes) == 1 and notes[0].startswith("detbal: interrupted after the `"), notes
    # A later analysis runs as usual: the signal was handled once.
    assert detbal.analyze(SAMPLE, device="cpu", permutations=0).report["input"]["rows"] == 200_000


def test_the_gpu_path(in_repo):
    """device="gpu" runs the WGSL kernels (lavapipe in CI, where REQUIRE_GPU=1 makes a missing
    adapter a failure); the potentials agree with the CPU's."""
    table, _ = detbal.simulate(mode="driven", rows=20_000, states=60, seed=2)
    try:
        gpu = detbal.analyze(table, device="gpu", permutations=0, verdict_resamples=0)
    except detbal.DetbalError as e:
        if os.environ.get("REQUIRE_GPU") == "1":
            raise
        pytest.skip(f"no GPU adapter: {e}")
    cpu = detbal.analyze(table, device="cpu", permutations=0, verdict_resamples=0)
    assert gpu.report["device"]["backend"] == "gpu"
    v_gpu = gpu.potentials.column("potential").to_pylist()
    v_cpu = cpu.potentials.column("potential").to_pylist()
    assert len(v_gpu) == len(v_cpu) == 60
    assert max(abs(a - b) for a, b in zip(v_gpu, v_cpu) if a is not None) < 1e-5
