"""The triton kernels compile for an H100 (sm_90) without a GPU: triton lowers them to PTX and its bundled
ptxas assembles a cubin. This catches compiled-mode errors (types, constexpr branches, shared memory)
that the interpreter cannot see, with the launch configurations the wrappers actually use."""

import inspect

import pytest

triton = pytest.importorskip("triton")

from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

from synthdata.kernels import _triton  # noqa: E402

if _triton.interpreting():
    pytest.skip("TRITON_INTERPRET=1: this process cannot compile triton kernels", allow_module_level=True)

H100 = GPUTarget("cuda", 90, 32)
LAUNCH = ("num_warps", "num_stages", "enable_fp_fusion")


def _compile(fn, pointer_types: dict[str, str], floats: set[str], constexprs: dict, options: dict):
    params = list(inspect.signature(fn).parameters)
    signature, values = {}, {}
    for i, p in enumerate(params):
        if p in constexprs:
            signature[p], values[(i,)] = "constexpr", constexprs[p]
        else:
            signature[p] = pointer_types.get(p) or ("fp32" if p in floats else "i32")
    return triton.compile(ASTSource(JITFunction(fn), signature, constexprs=values), target=H100, options=options)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_attention_compiles_for_sm90(dtype):
    from synthdata.kernels import _triton_attention as A

    cfg = A._config(1024, 64)
    const = {k: v for k, v in cfg.items() if k not in LAUNCH} | {"D": 64, "DOT_F32": False}
    ptrs = {p: "*" + dtype for p in ("Q", "K", "V", "KE", "VE", "Out")}
    kernel = _compile(A._attn_fwd, ptrs, {"qk_scale"}, const, {k: cfg[k] for k in LAUNCH})
    assert kernel.metadata.shared <= 228 * 1024


@pytest.mark.parametrize("channels_last", [False, True])
def test_group_norm_compiles_for_sm90(channels_last):
    from synthdata.kernels import _triton_norm as N

    ptrs = {"X": "*fp16", "Y": "*fp16", "SC": "*fp16", "SH": "*fp16", "W": "*fp32", "Bias": "*fp32"}
    const = dict(HAS_W=True, HAS_B=True, HAS_SS=True, ACT=True, CHANNELS_LAST=channels_last, BLOCK=2048)
    _compile(N._group_norm_fwd, ptrs, {"eps"}, const, {"num_warps": 8, **_triton.FP_FUSION})


@pytest.mark.parametrize("ddim", [False, True])
def test_sampler_step_compiles_for_sm90(ddim):
    from synthdata.kernels import _triton_sampler as S

    ptrs = {p: "*fp32" for p in ("MO", "X", "NZ", "OUT", "COEF", "GS")}
    const = dict(DDIM=ddim, GUIDED=True, GS_PTR=ddim, HAS_NOISE=True, CLIP=True, BLOCK=1024)
    _compile(S._sampler_fwd, ptrs, {"gs"}, const, {"num_warps": 4, **_triton.FP_FUSION})
