"""Where the clean stage's time goes: every split of benchmarks/prepare.py's input through clean_task in this one
process, sampled by a CPU-time profiler (SIGPROF), which unlike cProfile does not inflate the cost of small calls.

    python benchmarks/profile_clean.py                 # shares of the sampled CPU time per function (inclusive, self)
    python benchmarks/profile_clean.py --no-sample     # just run it (for `valgrind --tool=cachegrind`, `time`)

Splits as `prepare --workers 2` plans them; one process with one clean cache, so documents that two workers would
both clean are cleaned once here. Linux / macOS (signal.setitimer).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.prepare import write_input  # noqa: E402 - after the path set-up

from gptkit.data import tasks  # noqa: E402
from gptkit.data.pipeline import PrepareConfig  # noqa: E402
from gptkit.data.sources import default_split_bytes, plan_splits, resolve_inputs, total_bytes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=float, default=0.001, help="seconds of CPU time between samples")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--no-sample", action="store_true")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "gptkit-profile-clean"))
    args = ap.parse_args()

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    inp, out = work / "input", work / "out"
    write_input(inp, 4)
    cfg = PrepareConfig(inputs=(str(inp),), out=str(out), workers=2)
    files = resolve_inputs([str(inp)])
    splits = plan_splits(files, default_split_bytes(total_bytes(files), cfg.workers))
    for d in (out / "work" / "clean", out / "rejected"):
        d.mkdir(parents=True)
    ccfg, sig = cfg.clean_config(), cfg.dedup_config().signature_config()

    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    n = 0

    def sample(_sig: int, frame: FrameType | None) -> None:
        nonlocal n
        n += 1
        seen = set()
        f = frame
        if f is not None:
            own[_name(f)] += 1
        while f is not None:
            key = _name(f)
            if key not in seen:
                inclusive[key] += 1
                seen.add(key)
            f = f.f_back

    if not args.no_sample:
        signal.signal(signal.SIGPROF, sample)
        signal.setitimer(signal.ITIMER_PROF, args.interval, args.interval)
    c0 = time.process_time()
    for i, s in enumerate(splits):
        tasks.clean_task(str(out), [i, s.to_json()], ccfg, sig)
    cpu = time.process_time() - c0
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{len(splits)} splits cleaned in {cpu:.2f} CPU seconds")
    if args.no_sample or not n:
        return
    print(f"{n} samples; share of them per function, inclusive (self):")
    for key, c in inclusive.most_common(args.top):
        print(f"  {100 * c / n:5.1f}% ({100 * own[key] / n:4.1f}%)  {key}")


def _name(f: FrameType) -> str:
    return f"{Path(f.f_code.co_filename).name}:{f.f_code.co_name}"


if __name__ == "__main__":
    main()
