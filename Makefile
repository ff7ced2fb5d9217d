# The two commands of the README. Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Large XLA:CPU temporaries on transparent huge pages (glibc >= 2.35 on Linux; ignored
# elsewhere): far fewer page faults, the deformable convolution's backward ~2x faster.
export GLIBC_TUNABLES ?= glibc.malloc.hugetlb=1

.PHONY: demo demo-two-stage test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,video]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m edvr_jax.demo

# make demo, then the paper's stage 2 trained on its outputs (README "Two-stage restoration").
demo-two-stage: $(STAMP)
	$(PY) -m edvr_jax.demo --two-stage

# Two pytest workers, one test file each at a time (module fixtures are built once).
PYTEST := $(PY) -m pytest -q -n 2 --dist loadfile

test: $(STAMP)
	$(PYTEST)

# The inner loop: everything but the tests marked slow (subprocess runs, whole-step compiles).
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check edvr_jax tests benchmarks configs train.py eval.py

bench: $(STAMP)
	$(PY) benchmarks/bench_dcn.py
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_input.py
	$(PY) benchmarks/profile_dcn.py

clean:
	rm -rf $(VENV) .jax_cache
