"""CPUs without AVX-512: the kernels oneDNN picks there, and the route around its faulty strided 1x1 kernel.

oneDNN's AVX2 backward-weights kernel for a 1x1 convolution at stride 2 (``jit_1x1:avx2``) corrupts the
heap when the input is channels-last with 2 to 6 channels (docs/performance.md, "oneDNN's strided 1x1
kernel"). DARTS' FactorizedReduce is the one strided 1x1 conv here; single-channel data (digits) makes a
whole network channels-last. ``ONEDNN_MAX_CPU_ISA=AVX2`` makes any x86 machine take the AVX2 kernels,
so the child processes below run what a user without AVX-512 runs, whatever this machine has.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from archsearch.spaces.darts_ops import FactorizedReduce


def run_under_avx2(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=300)


def test_factorized_reduce_trains_on_channels_last_input_with_the_avx2_kernels():
    # the shapes of the DARTS-space PC-DARTS run that aborted (C=8, partial channels: 2-4 channels in)
    result = run_under_avx2("""
        import torch
        from archsearch.spaces.darts_ops import FactorizedReduce
        torch.manual_seed(0)
        for c_in in (2, 3, 4, 5, 6):
            for batch, size in ((32, 8), (64, 16), (8, 7)):
                op = FactorizedReduce(c_in, 4)
                x = torch.randn(batch, c_in, size, size).contiguous(memory_format=torch.channels_last)
                for _ in range(3):
                    op(x.requires_grad_()).square().sum().backward()
        print("done")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-2000:]


def test_darts_space_search_on_single_channel_data_runs_with_the_avx2_kernels(tmp_path):
    # the command line that aborted: plain DARTS on the DARTS space at a tiny size, on digits
    result = run_under_avx2(f"""
        import sys
        from archsearch.cli import main
        sys.exit(main(["search", "--quiet", "--out", {str(tmp_path / 'run')!r}, "--data", "digits",
                       "--method", "darts", "epochs=1", "C=2", "layers=3", "limit_train=64",
                       "hessian_every=0", "batch_size=32", "space=darts"]))
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "genotype.json").is_file()


@pytest.mark.parametrize("size", [8, 7, 6, 5])
def test_factorized_reduce_is_the_two_strided_1x1_convs_of_the_reference(size):
    # float64 takes ATen's own kernels, not oneDNN's: an independent computation of quark0/darts' op
    torch.manual_seed(size)
    op = FactorizedReduce(3, 6, affine=False).double()
    x = torch.randn(4, 3, size, size, dtype=torch.float64)
    relu = x.relu()
    shifted = relu[:, :, 1:, 1:]
    if size % 2:  # an odd size: the shifted branch padded to ceil(H/2) (see FactorizedReduce)
        shifted = F.pad(shifted, (0, 1, 0, 1))
    expected = torch.cat([F.conv2d(relu, op.conv_1.weight, stride=2), F.conv2d(shifted, op.conv_2.weight, stride=2)], 1)
    expected = F.batch_norm(expected, None, None, training=True)
    assert torch.allclose(op(x), expected, rtol=0, atol=1e-12)
