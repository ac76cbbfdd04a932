"""Timing for the examples: the best of `repeat` runs after a warm-up,
eager and compiled alike under torch.inference_mode."""
import time

import torch


def best_ms(fn, repeat):
    """The fastest of `repeat` calls of fn(), in milliseconds."""
    with torch.inference_mode():
        fn()
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    return min(samples) * 1e3
