"""Every configs/*.py: loads, has the keys the CLI promises, builds the published model."""

import importlib.util

import pytest
from conftest import ROOT

from edvr_jax.convert.loader import abstract_params
from edvr_jax.models import count_params
from edvr_jax.train.loop import create_model

CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.py"))
PUBLISHED = {  # parameter counts of BasicSR's state_dicts
    "edvr_m_reds_wotsa": 2_996_259, "edvr_m_reds": 3_300_131, "edvr_l_reds_wotsa": 19_419_875,
    "edvr_l_reds": 20_633_827, "edvr_l_vimeo90k": 20_699_363, "edvr_l_srblur_reds": 23_306_851,
    "edvr_l_deblur_reds": 23_602_019, "edvr_l_deblurcomp_reds": 23_602_019,
}
STAGE2 = {"edvr_m_stage2_reds": "EDVR_M_stage2", "edvr_l_stage2_reds": "EDVR_L_stage2"}
REQUIRED = ["data.root", "data.dataset", "train.num_steps", "train.batch_size", "train.checkpoint_every",
            "train.seed", "model.num_feat", "model.num_frame", "model.deformable_groups",
            "model.num_extract_block", "model.num_reconstruct_block", "model.center_frame_idx",
            "model.hr_in", "model.with_predeblur", "model.with_tsa"]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ABLATIONS = {  # the paper's ablation rows at EDVR-M size (tests/test_ablations.py derives them)
    "ablation_no_alignment": 1_464_259, "ablation_no_pyramid": 1_736_539,
    "ablation_no_cascade": 2_723_979, "ablation_pcd": 2_996_259, "ablation_pcd_tsa": 3_300_131,
}


def test_every_published_recipe_has_a_config():
    assert set(PUBLISHED) | set(ABLATIONS) | {"demo", "demo_stage2", "tiny"} | set(STAGE2) == set(CONFIGS)


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_configs_build_their_row(name):
    mod = load(name)
    c = mod.get_config()
    assert count_params(abstract_params(create_model(c))) == ABLATIONS[name]
    assert f"{ABLATIONS[name]:,} parameters" in mod.__doc__
    assert f"python eval.py --checkpoint runs/{name} --dataset reds4" in mod.__doc__
    # one recipe for every row, so that the rows compare
    assert (c.train.num_steps, c.train.lr, c.train.ema_decay, c.train.init_from) == (600_000, 4e-4, 0.999, "")
    assert (c.model.num_feat, c.model.num_reconstruct_block) == (64, 10)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_complete_and_documented(name):
    mod = load(name)
    c = mod.get_config()
    for key in REQUIRED:
        group, field = key.split(".")
        assert field in c[group], key
    doc = mod.__doc__
    assert f"--config configs/{name}.py" in doc and "Hardware" in doc and "Expected" in doc
    assert sum(c.train.periods) >= c.train.num_steps, "the cosine schedule must cover the run"
    assert len(c.train.periods) == len(c.train.restart_weights)
    assert c.data.dataset in ("reds", "vimeo90k", "folder", "demo", "tfds")
    if c.model.hr_in and c.data.lq_root:  # stage 2 pads as its stage 1 (SR) does
        assert c.model.with_predeblur and c.data.task == "sr"
        assert c.eval.padding == "reflection_circle"
        assert "--stage2" in doc or "--two-stage" in doc
    elif c.model.hr_in:
        assert c.model.with_predeblur and c.data.task in ("deblur", "deblurcomp")
        assert c.eval.padding == "replicate"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_architecture_and_recipe(name):
    c = load(name).get_config()
    assert count_params(abstract_params(create_model(c))) == PUBLISHED[name]
    assert c.train.batch_size == 32 and c.train.num_steps == 600_000 and c.train.seed == 10
    assert (c.train.lr, c.train.b1, c.train.b2, c.train.eta_min) == (4e-4, 0.9, 0.99, 1e-7)
    assert c.train.loss_reduction == "sum" and c.train.loss_eps == 1e-12
    assert (c.train.tsa_iter == 50_000) == (name in ("edvr_m_reds", "edvr_l_reds"))


@pytest.mark.parametrize("name", sorted(STAGE2))
def test_stage2_config_builds_its_preset(name):
    from edvr_jax.models import build

    c = load(name).get_config()
    assert create_model(c) == build(STAGE2[name])
