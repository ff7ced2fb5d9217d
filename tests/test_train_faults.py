"""The fault-injection seam: parsed from a string, read from the environment only on request."""

import numpy as np

from edvr_jax.train import faults
from edvr_jax.train.faults import NO_FAULTS, FaultHooks


def test_parse_and_poison_only_the_named_step():
    hooks = FaultHooks.parse("kill@save:10,nan@step:5,junk")
    assert hooks.faults == {("kill", "save", "10"), ("nan", "step", "5")}
    batch = {"lq": np.ones(3, np.float32), "gt": np.ones(3, np.float32)}
    assert np.isnan(hooks.maybe_poison(5, batch)["lq"]).all()
    assert np.array_equal(hooks.maybe_poison(5, batch)["gt"], batch["gt"])
    assert hooks.maybe_poison(4, batch) is batch
    hooks.maybe_kill("save", 9)  # not the named step: returns
    hooks.maybe_kill("step", 10)  # not the named point: returns


def test_environment_is_read_on_request_not_at_import(monkeypatch):
    monkeypatch.setenv(faults.ENV_VAR, "nan@step:2")
    assert NO_FAULTS.faults == frozenset()
    assert FaultHooks.from_env().faults == {("nan", "step", "2")}
    assert FaultHooks.from_env({}).faults == frozenset()
