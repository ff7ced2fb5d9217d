"""Memory options of the model: rematerialisation (``EDVR.remat`` / ``model.remat``) and
bfloat16 compute (``train.compute_dtype``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import jaxprs_in_params

from edvr_jax.models.edvr import EDVR, REMAT_POLICIES
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


def _perturbed(params):
    # Non-zero offsets, so the deformable sampling is exercised off the integer grid.
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    return treedef.unflatten([p + 0.05 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)])


@pytest.mark.slow
def test_remat_gives_the_plain_models_parameters_and_gradients():
    kw = dict(TINY, with_tsa=False)  # TSA is never rematerialised; leaving it out halves the test
    # "pcd" and "dcn" both include "blocks"; every policy's parameter tree is compared below.
    models = {policy: EDVR(**kw, remat=policy) for policy in ("none", "pcd", "dcn")}
    x = jax.random.uniform(jax.random.key(1), (1, 3, 8, 12, 3))
    inits = {k: jax.jit(EDVR(**kw, remat=k).init)(jax.random.key(0), x)["params"] for k in REMAT_POLICIES}
    # Same tree, same names, same initial values: checkpoints and converters see no difference.
    for policy in REMAT_POLICIES[1:]:
        assert jax.tree_util.tree_structure(inits[policy]) == jax.tree_util.tree_structure(inits["none"])
        jax.tree_util.tree_map(np.testing.assert_array_equal, inits[policy], inits["none"])
    params = _perturbed(inits["none"])

    # One program for the three variants (one compilation).
    grads = jax.jit(lambda p: {k: jax.value_and_grad(_loss(m, x), has_aux=True)(p) for k, m in models.items()})(params)
    (l0, d0), g0 = grads["none"]
    for policy in ("pcd", "dcn"):
        (l1, d1), g1 = grads[policy]
        np.testing.assert_allclose(l1, l0, rtol=1e-6)
        for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1), strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=2e-6 * float(jnp.max(jnp.abs(a))) + 1e-12)
        # The offset diagnostics are sown through the rematerialised modules as well.
        assert jax.tree_util.tree_structure(d0) == jax.tree_util.tree_structure(d1)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-6), d0, d1)


@pytest.mark.slow
def test_remat_policies_recompute_what_they_name():
    x = jnp.zeros((1, 3, 8, 8, 3))
    blocks = TINY["num_extract_block"] + TINY["num_reconstruct_block"]
    expected = {"none": 0, "blocks": blocks, "pcd": blocks + 1, "dcn": blocks + 4}  # PCD has 4 DCNv2Packs
    for policy, count in expected.items():
        model = EDVR(**TINY, remat=policy)
        params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
        jaxpr = jax.make_jaxpr(jax.grad(lambda p, m=model: _loss(m, x)(p)[0]))(params).jaxpr
        assert _remat_count(jaxpr) == count, policy
    with pytest.raises(ValueError, match="remat must be one of none, blocks, pcd, dcn"):
        jax.eval_shape(EDVR(**TINY, remat="all").init, jax.random.key(0), x)


def test_config_selects_remat():
    c = base_config()
    assert c.model.remat == "none" and create_model(c).remat == "none"
    c.model.remat = "dcn"
    assert create_model(c).remat == "dcn"


@pytest.mark.slow
def test_bfloat16_compute_covers_every_convolution_and_matmul():
    """With compute_dtype bfloat16 every conv / dot of the forward and backward pass runs in
    bfloat16; only the sampling positions (offsets, masks, bilinear weights) and the loss stay
    float32. The skip connection keeps the float32 input exact."""
    c = base_config()
    c.model.update(TINY)
    c.train.compute_dtype = "bfloat16"
    model = create_model(c)
    x = jax.random.uniform(jax.random.key(1), (1, 3, 8, 8, 3))
    params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
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
    assert jax.eval_shape(model.apply, {"params": params}, x).dtype == jnp.float32
