"""deform_conv2d against torchvision fixtures, a float64 numpy reference and lax.conv."""

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dcn_reference import deform_conv2d_ref
from hypothesis import HealthCheck, given, settings
from jax.test_util import check_grads

from edvr_jax.ops import deform_conv2d

# The operator's exactness and memory tests run on optimised XLA programs, as users' do.
pytestmark = pytest.mark.usefixtures("optimized_xla")

# Both forms run on every platform; "auto" picks one by the platform lowered for.
IMPLS = ["gather", "packed"]

TV_CASES = [
    "edvr_like", "nonsquare_g2", "stride2", "dilation2", "mixed_hw", "far_outside",
    "integer_offsets", "zero_offsets", "zero_mask", "kernel1x1", "c64_g8_edvr",
]


@pytest.fixture(scope="module")
def tv(data_dir):
    return np.load(data_dir / "dcn_torchvision.npz")


def nhwc(a):
    return np.transpose(a, (0, 2, 3, 1))


def tv_args(tv, name):
    g = lambda k: tv[f"{name}/{k}"]
    kh, kw, sh, sw, ph, pw, dh, dw = (int(v) for v in g("meta"))
    args = (nhwc(g("x")), nhwc(g("offset")), nhwc(g("mask")),
            np.transpose(g("weight"), (2, 3, 1, 0)), g("bias"))
    conf = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    return args, conf


def assert_rel_close(ours, ref, rel, what):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    scale = max(np.abs(ref).max(), 1e-6)
    err = np.abs(ours - ref).max() / scale
    assert err <= rel, f"{what}: max error {err:.3g} of max |ref| {scale:.3g} exceeds {rel}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", TV_CASES)
def test_matches_torchvision_forward_and_all_gradients(tv, name, impl):
    (x, off, mask, kernel, bias), conf = tv_args(tv, name)
    conf["impl"] = impl
    cot = nhwc(tv[f"{name}/cot"])
    f = jax.jit(lambda *a: deform_conv2d(*a, **conf))

    out = f(x, off, mask, kernel, bias)
    assert_rel_close(out, nhwc(tv[f"{name}/out"]), 2e-6, f"{name} forward")  # measured <= 2.2e-7

    grads = jax.jit(jax.grad(lambda *a: jnp.sum(deform_conv2d(*a, **conf) * cot),
                             argnums=(0, 1, 2, 3, 4)))(x, off, mask, kernel, bias)
    expected = (nhwc(tv[f"{name}/gx"]), nhwc(tv[f"{name}/goffset"]), nhwc(tv[f"{name}/gmask"]),
                np.transpose(tv[f"{name}/gweight"], (2, 3, 1, 0)), tv[f"{name}/gbias"])
    for what, ours, ref in zip(("x", "offset", "mask", "kernel", "bias"), grads, expected, strict=True):
        if np.abs(ref).max() == 0:  # e.g. d/d offset with a zero mask
            np.testing.assert_array_equal(np.asarray(ours), 0, err_msg=f"{name} grad {what}")
        else:
            assert_rel_close(ours, ref, 2e-6, f"{name} grad {what}")  # measured <= 4.4e-7


def random_case(rng, n, h, w, cin, cout, groups, kernel_hw, stride, padding, dilation, scale):
    kh, kw = kernel_hw
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    x = rng.standard_normal((n, h, w, cin))
    off = rng.standard_normal((n, ho, wo, 2 * groups * kh * kw)) * scale
    mask = rng.uniform(size=(n, ho, wo, groups * kh * kw))
    kernel = rng.standard_normal((kh, kw, cin, cout)) / np.sqrt(kh * kw * cin)
    bias = rng.standard_normal(cout)
    return x, off, mask, kernel, bias


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("chunk_bytes", [None, 1, 3000, 300_000])
@pytest.mark.slow
def test_matches_numpy_reference_incl_chunking(chunk_bytes, impl):
    rng = np.random.default_rng(0)
    for shape in [
        dict(n=2, h=7, w=11, cin=6, cout=4, groups=3, kernel_hw=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), scale=3.0),
        dict(n=1, h=9, w=6, cin=4, cout=2, groups=2, kernel_hw=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), scale=5.0),
        dict(n=3, h=5, w=8, cin=2, cout=3, groups=1, kernel_hw=(2, 3), stride=(1, 2), padding=(0, 1), dilation=(1, 1), scale=1.0),
    ]:
        x, off, mask, kernel, bias = random_case(rng, **shape)
        conf = dict(stride=shape["stride"], padding=shape["padding"], dilation=shape["dilation"])
        ref = deform_conv2d_ref(x, off, mask, kernel, bias, **conf)
        ours = deform_conv2d(*(jnp.float32(a) for a in (x, off, mask, kernel, bias)),
                             max_columns_bytes=chunk_bytes, impl=impl, **conf)
        assert_rel_close(ours, ref, 2e-6, f"{shape} chunk={chunk_bytes} {impl}")


@pytest.mark.parametrize("impl,chunk_bytes", [
    ("gather", 2 * 7 * 9 * 8 * 4 * 3),  # 3 output rows (of both images) per chunk
    ("packed", 2 * 2 * 9 * 2 * 16 * 4 * 17),  # 17 positions (2 images x 2 x 9 taps x 2 groups x 16)
])
@pytest.mark.slow
def test_chunked_gradients_equal_unchunked(impl, chunk_bytes):
    rng = np.random.default_rng(1)
    args = tuple(jnp.float32(a) for a in random_case(rng, 2, 6, 7, 8, 4, 2, (3, 3), (1, 1), (1, 1), (1, 1), 2.0))
    loss = lambda chunk: lambda *a: jnp.sum(jnp.sin(deform_conv2d(*a, max_columns_bytes=chunk, impl=impl)))
    full = jax.grad(loss(2**40), argnums=(0, 1, 2, 3, 4))(*args)
    chunked = jax.grad(loss(chunk_bytes), argnums=(0, 1, 2, 3, 4))(*args)
    chex.assert_trees_all_close(full, chunked, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), ((2, 1), (0, 1), (1, 2))])
@pytest.mark.slow
def test_zero_offsets_unit_mask_is_plain_convolution(stride, padding, dilation, impl):
    rng = np.random.default_rng(2)
    x = jnp.float32(rng.standard_normal((2, 9, 12, 8)))
    kernel = jnp.float32(rng.standard_normal((3, 3, 8, 5)))
    pair = lambda v: (v, v) if isinstance(v, int) else v
    ref = jax.lax.conv_general_dilated(
        x, kernel, pair(stride), [(p, p) for p in pair(padding)], rhs_dilation=pair(dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest")
    n, ho, wo, _ = ref.shape
    off = jnp.zeros((n, ho, wo, 2 * 4 * 9))
    ours = deform_conv2d(x, off, jnp.ones((n, ho, wo, 4 * 9)), kernel, impl=impl,
                         stride=stride, padding=padding, dilation=dilation, precision="highest")
    assert_rel_close(ours, ref, 2e-6, "zero-offset DCN vs lax.conv")
    # mask=None means DCNv1 (all ones).
    ours_v1 = deform_conv2d(x, off, None, kernel, stride=stride, padding=padding, dilation=dilation,
                            precision="highest", impl=impl)
    assert_rel_close(ours_v1, ref, 2e-6, "DCNv1 path vs lax.conv")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.slow
def test_gradients_check_grads_float64_away_from_kinks(impl):
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        x, off, mask, kernel, bias = random_case(rng, 1, 5, 6, 4, 3, 2, (3, 3), (1, 1), (1, 1), (1, 1), 1.0)
        # Keep every sampling position's fractional part inside (0.2, 0.8) so that
        # finite differences never cross a bilinear cell border.
        off = np.floor(off) + rng.uniform(0.2, 0.8, off.shape)
        f = lambda x, off, mask, kernel, bias: deform_conv2d(x, off, mask, kernel, bias, impl=impl)
        check_grads(f, tuple(jnp.asarray(a) for a in (x, off, mask, kernel, bias)),
                    order=1, modes=("rev",), eps=1e-4, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.slow
def test_offset_gradient_is_nonzero_and_one_sided_at_integer_positions(impl):
    """EDVR starts with offsets exactly 0: the offset gradient must not vanish there."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(4)
        x = jnp.asarray(rng.standard_normal((1, 6, 6, 2)))
        kernel = jnp.asarray(rng.standard_normal((3, 3, 2, 1)))
        off = jnp.zeros((1, 6, 6, 18))
        mask = jnp.ones((1, 6, 6, 9))
        loss = lambda o: jnp.sum(deform_conv2d(x, o, mask, kernel, impl=impl))
        g = jax.grad(loss)(off)
        assert float(jnp.abs(g).max()) > 0.1
        # The one-sided (forward) difference quotient is exact for bilinear sampling
        # moving right from an integer position.
        eps = 1e-3
        for ch in (0, 7, 9):
            e = jnp.zeros_like(off).at[0, 2, 3, ch].set(eps)
            fd = (loss(off + e) - loss(off)) / eps
            np.testing.assert_allclose(float(g[0, 2, 3, ch]), float(fd), rtol=1e-6, atol=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 2), h=st.integers(3, 9), w=st.integers(3, 9), groups=st.integers(1, 3),
    cg=st.integers(1, 3), cout=st.integers(1, 4), kh=st.integers(1, 3), kw=st.integers(1, 3),
    sh=st.integers(1, 2), sw=st.integers(1, 2), ph=st.integers(0, 2), pw=st.integers(0, 2),
    dh=st.integers(1, 2), dw=st.integers(1, 2), scale=st.sampled_from([0.0, 0.5, 2.0, 8.0]),
    integer=st.booleans(), seed=st.integers(0, 2**31 - 1), impl=st.sampled_from(IMPLS),
)
@pytest.mark.slow
def test_property_matches_numpy_reference(n, h, w, groups, cg, cout, kh, kw, sh, sw, ph, pw, dh, dw,
                                          scale, integer, seed, impl):
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        return
    rng = np.random.default_rng(seed)
    x, off, mask, kernel, bias = random_case(rng, n, h, w, groups * cg, cout, groups, (kh, kw),
                                             (sh, sw), (ph, pw), (dh, dw), scale)
    if integer:
        off = np.round(off)
    conf = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    ref = deform_conv2d_ref(x, off, mask, kernel, bias, **conf)
    conf["impl"] = impl
    ours = jax.jit(lambda *a: deform_conv2d(*a, **conf))(*(jnp.float32(a) for a in (x, off, mask, kernel, bias)))
    assert_rel_close(ours, ref, 5e-6, "property case")


class TestWithAndWithoutJit(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_same_result(self):
        rng = np.random.default_rng(5)
        args = tuple(jnp.float32(a) for a in random_case(rng, 1, 6, 5, 4, 3, 2, (3, 3), (1, 1), (1, 1), (1, 1), 2.0))
        ref = deform_conv2d_ref(*args)
        out = self.variant(deform_conv2d)(*args)
        chex.assert_shape(out, (1, 6, 5, 3))
        assert_rel_close(out, ref, 2e-6, "variant")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.slow
def test_bfloat16_compute_keeps_positions_in_float32(impl):
    rng = np.random.default_rng(6)
    x, off, mask, kernel, bias = random_case(rng, 1, 12, 40, 8, 4, 2, (3, 3), (1, 1), (1, 1), (1, 1), 3.0)
    off = off + 30.0  # large positions: bf16 positions would be off by whole pixels
    ref = deform_conv2d_ref(x, off, mask, kernel, bias)
    out = deform_conv2d(jnp.bfloat16(x), jnp.float32(off), jnp.float32(mask), jnp.bfloat16(kernel), jnp.bfloat16(bias),
                        impl=impl)
    assert out.dtype == jnp.bfloat16
    assert_rel_close(out, ref, 3e-2, "bf16")


@pytest.mark.parametrize("bad,match", [
    (dict(x=np.zeros((4, 4, 3))), r"x must have rank 4"),
    (dict(kernel=np.zeros((3, 3, 5, 2))), r"expects Cin=5 but x .* has Cin=4"),
    (dict(offset=np.zeros((1, 4, 4, 17))), r"17 channels, which is not a positive multiple of 2\*kh\*kw = 18"),
    (dict(offset=np.zeros((1, 4, 4, 54))), r"Cin=4 is not divisible by the 3 deformable groups"),
    (dict(offset=np.zeros((1, 5, 4, 36))), r"offset \(1, 5, 4, 36\) must be \(N, Ho, Wo, C\) = \(1, 4, 4, C\)"),
    (dict(mask=np.zeros((1, 4, 4, 9))), r"mask \(1, 4, 4, 9\) must be \(N, Ho, Wo, G\*kh\*kw\) = \(1, 4, 4, 18\)"),
    (dict(bias=np.zeros(3)), r"bias \(3,\) must be \(Cout,\) = \(2,\)"),
    (dict(stride=(1, 2, 3)), r"stride must be an int or an \(h, w\) pair"),
])
def test_input_validation_messages(bad, match):
    args = dict(x=np.zeros((1, 4, 4, 4)), offset=np.zeros((1, 4, 4, 36)), mask=np.zeros((1, 4, 4, 18)),
                kernel=np.zeros((3, 3, 4, 2)), bias=np.zeros(2))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        deform_conv2d(**{k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in args.items()})


def test_auto_lowers_the_gather_form_on_cpu():
    rng = np.random.default_rng(7)
    args = tuple(jnp.float32(a) for a in random_case(rng, 1, 6, 5, 4, 3, 2, (3, 3), (1, 1), (1, 1), (1, 1), 2.0))
    auto = jax.jit(lambda *a: deform_conv2d(*a))(*args)
    gather = jax.jit(lambda *a: deform_conv2d(*a, impl="gather"))(*args)
    np.testing.assert_array_equal(np.asarray(auto), np.asarray(gather))
    with pytest.raises(ValueError, match="impl must be one of"):
        deform_conv2d(*args, impl="pallas")


def _tpu_figures(fn, *shapes):
    from jax.experimental import topologies
    from jax.sharding import SingleDeviceSharding

    device = topologies.get_topology_desc(platform="tpu", topology_name="v5e:2x2").devices[0]
    specs = [jax.ShapeDtypeStruct(s, jnp.float32, sharding=SingleDeviceSharding(device)) for s in shapes]
    compiled = jax.jit(fn).trace(*specs).lower().compile()
    return compiled.memory_analysis().temp_size_in_bytes, compiled.cost_analysis()["bytes accessed"]


def test_compiles_for_tpu_with_bounded_temporaries(monkeypatch):
    """AOT compile for one v5e chip (needs libtpu, no TPU): 'auto' must lower the packed form."""
    pytest.importorskip("libtpu")
    monkeypatch.setenv("TPU_SKIP_MDS_QUERY", "1")
    n, h, w, c, g = 2, 32, 32, 32, 4
    shapes = ((n, h, w, c), (n, h, w, 2 * g * 9), (n, h, w, g * 9), (3, 3, c, c))
    columns = n * h * w * 9 * c * 4
    temp, bytes_accessed = _tpu_figures(lambda *a: deform_conv2d(*a), *shapes)
    gather_temp, gather_bytes = _tpu_figures(lambda *a: deform_conv2d(*a, impl="gather"), *shapes)
    # Measured (libtpu 0.0.42): auto (packed) 0 bytes of HBM temporaries, 205 MB accessed;
    # the gather form 6.75 MiB (3.0x the 2.25 MiB columns) and 1,843 MB.
    assert temp <= columns, (temp, columns)
    assert gather_temp > columns  # the bound separates the two forms
    assert bytes_accessed <= 0.25 * gather_bytes, (bytes_accessed, gather_bytes)
