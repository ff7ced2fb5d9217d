"""Memory options of the model: rematerialisation (``EDVR.remat`` / ``model.remat``) and
bfloat16 compute (``train.compute_dtype``)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import jaxprs_in_params

from edvr_jax.models import EDVR
from edvr_jax.train.config import base_config
from edvr_jax.train.loop import create_model

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=2)


def _remat_count(jaxpr) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name.startswith(("checkpoint", "remat"))
        for sub in jaxprs_in_params(eqn.params):
            n += _remat_count(sub)
    return n


def _loss(model, x):
    def f(params):
        out, diag = model.apply({"params": params}, x, mutable=["diagnostics"])
        return jnp.sum(jnp.sin(3 * out)), diag
    return f


def test_remat_gives_the_plain_models_parameters_and_gradients():
    kw = dict(TINY, with_tsa=False)  # TSA is not rematerialised; leaving it out halves the test
    plain, remat = EDVR(**kw), EDVR(**kw, remat=True)
    x = jax.random.uniform(jax.random.key(1), (1, 3, 8, 12, 3))
    p_plain = plain.init(jax.random.key(0), x)["params"]
    p_remat = remat.init(jax.random.key(0), x)["params"]
    # Same tree, same names, same initial values: checkpoints and converters see no difference.
    assert jax.tree_util.tree_structure(p_plain) == jax.tree_util.tree_structure(p_remat)
    jax.tree_util.tree_map(np.testing.assert_array_equal, p_plain, p_remat)
    # Non-zero offsets, so the deformable sampling is exercised off the integer grid.
    leaves, treedef = jax.tree_util.tree_flatten(p_plain)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    params = treedef.unflatten([p + 0.05 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)])

    grad = lambda m: jax.jit(jax.value_and_grad(_loss(m, x), has_aux=True))(params)
    (l0, d0), g0 = grad(plain)
    (l1, d1), g1 = grad(remat)
    np.testing.assert_allclose(l1, l0, rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=2e-6 * float(jnp.max(jnp.abs(a))) + 1e-12)
    # The offset diagnostics are sown through the rematerialised PCD as well.
    assert jax.tree_util.tree_structure(d0) == jax.tree_util.tree_structure(d1)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-6), d0, d1)

    # One rematerialised region per residual block (extraction + reconstruction) and PCD.
    jaxpr = lambda m: jax.make_jaxpr(jax.grad(lambda p: _loss(m, x)(p)[0]))(params).jaxpr
    assert _remat_count(jaxpr(plain)) == 0
    assert _remat_count(jaxpr(remat)) == TINY["num_extract_block"] + TINY["num_reconstruct_block"] + 1


def test_config_selects_remat():
    c = base_config()
    assert c.model.remat is False and create_model(c).remat is False
    c.model.remat = True
    assert create_model(c).remat is True


def test_bfloat16_compute_covers_every_convolution_and_matmul():
    """With compute_dtype bfloat16 every conv / dot of the forward and backward pass runs in
    bfloat16; only the sampling positions (offsets, masks, bilinear weights) and the loss stay
    float32. The skip connection keeps the float32 input exact."""
    c = base_config()
    c.model.update(TINY)
    c.train.compute_dtype = "bfloat16"
    model = create_model(c)
    x = jax.random.uniform(jax.random.key(1), (1, 3, 8, 8, 3))
    params = model.init(jax.random.key(0), x)["params"]
    jaxpr = jax.make_jaxpr(jax.grad(lambda p: _loss(model, x)(p)[0]))(params).jaxpr
    seen, wide = [], []

    def walk(j):
        for eqn in j.eqns:
            if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
                dtypes = {str(v.aval.dtype) for v in eqn.invars}
                seen.append(eqn.primitive.name)
                if dtypes != {"bfloat16"}:
                    wide.append((eqn.primitive.name, sorted(dtypes), eqn.outvars[0].aval.shape))
            for sub in jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jaxpr)
    assert seen.count("conv_general_dilated") > 40
    assert not wide, f"float32 convolutions/matmuls in a bfloat16 model: {wide[:5]}"
    out = model.apply({"params": params}, x)
    assert out.dtype == jnp.float32
