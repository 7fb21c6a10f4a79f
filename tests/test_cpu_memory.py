"""gptkit.cpu_memory: freed memory stays in the process, so repeated large tensors stop page-faulting."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import resource, sys, torch
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    from gptkit.cpu_memory import keep_freed_memory
    assert keep_freed_memory()
from gptkit.fused_loss import linear_cross_entropy
torch.manual_seed(0)
emb = torch.nn.Embedding(8000, 64)
w = torch.nn.Parameter(torch.randn(8000, 64) * 0.02)
def step():  # the demo's loss head in small: 2,048 rows, an 8k vocabulary, 8 MB logits chunks
    idx = torch.randint(0, 8000, (2048,))
    h = torch.relu(emb(idx)) ** 2
    loss = linear_cross_entropy(h, w, torch.randint(0, 8000, (2048,)))
    loss.backward()
    emb.weight.grad = w.grad = None
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str, runs: int = 2) -> int:
    """The fewest minor faults of `runs` child processes: faults that other work on the machine causes (a
    parallel test's memory, the kernel reclaiming pages) only add to a count, so the least is the measurement."""
    counts = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
        counts.append(int(out.stdout.split()[-1]))
    return min(counts)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keeping_freed_memory_stops_the_page_faults_of_repeated_large_tensors():
    default, kept = minor_faults("default"), minor_faults("keep")
    assert default > 10 * 2000  # glibc maps and trims the chunks afresh: thousands of fresh pages a step
    assert kept < default / 10
