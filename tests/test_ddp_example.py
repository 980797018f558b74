"""examples/ddp_train.py --check, launched by torchrun: DDP training with flag_gems in
every rank matches native, ranks share one tuning cache, each rank writes its record log."""

import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from conftest import ON_GPU

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--layers", "2", "--hidden", "32", "--heads", "4", "--seq", "16", "--vocab", "64", "--batch", "2",
        "--steps", "2", "--dtype", "float32"]


def _world_sizes():
    # Gloo runs any number of CPU ranks; on GPUs NCCL wants one device per rank.
    return [1, 2] if not ON_GPU or torch.cuda.device_count() >= 2 else [1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
@pytest.mark.parametrize("world", _world_sizes())
def test_ddp_train_check(tmp_path, world):
    # Two configs per tuned key: the check needs concurrent tuning, not a long search.
    env = dict(os.environ, GEMS_CACHE_DIR=str(tmp_path / "cache"), GEMS_TUNE_MAX_CONFIGS="2",
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(ROOT, "src"), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={world}", "--standalone",
               os.path.join(ROOT, "examples", "ddp_train.py"), "--check", "--out-dir", str(tmp_path), *TINY]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for rank in range(world):
        assert f"rank {rank} check OK" in done.stdout
        assert os.path.getsize(tmp_path / f"rank{rank}.log") > 0
