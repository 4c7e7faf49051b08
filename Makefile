PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One install stamp per set of extras: `make demo` installs the base package only (what
# `regmtl compare school` needs), `make test` / `make lint` the test extras, `make docs` the
# docs extras (see pyproject.toml).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test test-fast test-matrix test-portability test-faults fuzz lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(TEST_STAMP) $(DOCS_STAMP) $(STAMP)  # (the test extras include the docs ones)

$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP) $(STAMP)

demo: $(STAMP)
	$(BIN)/regmtl compare school

# Two pytest processes (pytest-xdist), one BLAS thread each: two processes that each ran two
# BLAS threads on two cores would stall one another (11 min serial, 8 min this way).
# "worksteal": each worker starts on one contiguous half of the tests (a module's shared
# fixtures, such as a fitted comparison or a Dask cluster, are set up once, not once per
# worker) and takes half of the other's queue when it runs dry (no idle core at the end
# behind a long queue).
TEST_WORKERS ?= 2
TEST_DIST ?= worksteal

# --durations: the 25 slowest tests are printed with every run, so that a slow one is seen.
test: $(TEST_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist $(TEST_DIST) --durations=25 tests

# A quick check while developing (under 3 minutes on 2 cores): the first two tests of every
# test module (REGMTL_TIER=fast, tests/conftest.py), so that a broken import, fixture or
# plainest case of any module shows; `make test` runs every test.
test-fast: $(TEST_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 REGMTL_TIER=fast \
		$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist $(TEST_DIST) --durations=10 tests

# Every case of every test (REGMTL_MATRIX=full): the whole support matrix
# (tests/test_conformance.py, regmtl.conformance: every registered penalty x every loss and a
# loss list x every shape of the input, each cell refused by name or checked against an
# independent optimum; `make test` runs one cell per penalty and loss), every case of the
# modules that read REGMTL_MATRIX (the placements, the Dask routes, the slowest real-data
# paths, the refit on a Dask cluster) and every case that `make test` thins (THIN in
# tests/conftest.py: the Dask and deep-training families, the slowest parametrized checks).
test-matrix: $(TEST_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 REGMTL_MATRIX=full \
		$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist $(TEST_DIST) --durations=25 tests

# The verdicts that must not follow the machine's floating point: the support matrix's slice,
# the property tests and the linear solvers' tests under a second family of OpenBLAS kernels
# (PORTABLE_CORE: SandyBridge, AVX without FMA, rounds otherwise than the Haswell/Zen and
# SkylakeX kernels a machine picks by itself; SkylakeX where the CPU has AVX-512) and numba's
# generic CPU target (no AVX: other vector widths in the compiled kernels). A test that passes
# under `make test` and fails here depends on which side of a budget rounding puts it.
PORTABLE_CORE ?= SandyBridge
PORTABLE_NUMBA_CPU ?= generic
PORTABILITY_TESTS := tests/test_conformance.py tests/test_properties_linear.py \
	tests/test_properties_io.py $(wildcard tests/solvers/test_solvers.py \
	tests/solvers/test_optimality.py tests/solvers/test_fast_solvers.py \
	tests/solvers/test_structured_optimality.py tests/solvers/test_convergence.py \
	tests/penalties/test_nonconvex_*.py tests/solvers/test_quantile_*.py \
	tests/solvers/test_interior_point.py tests/solvers/test_admm.py \
	tests/solvers/test_parts_admm.py tests/solvers/test_box_descent.py \
	tests/test_multinomial*.py tests/solvers/test_multinomial*.py tests/datafits/test_losses*.py \
	tests/test_case_bank.py tests/penalties/test_robust_penalties.py \
	tests/penalties/test_structured_penalties.py tests/penalties/test_penalties.py \
	tests/solvers/test_row_space_cg.py tests/solvers/test_low_rank_subspace.py \
	tests/solvers/test_fista_groups.py tests/solvers/test_group_dual.py \
	tests/solvers/test_wide_ridge.py tests/test_extreme_scales.py tests/test_numeric_range.py \
	tests/test_real_data_certificates.py tests/test_sklearn_equivalence.py \
	tests/penalties/test_temporal_penalties.py)
test-portability: $(TEST_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		OPENBLAS_CORETYPE=$(PORTABLE_CORE) NUMBA_CPU_NAME=$(PORTABLE_NUMBA_CPU) \
		$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist $(TEST_DIST) $(PORTABILITY_TESTS)

# The fault tests (tests/test_dask_faults.py) at full size: a worker of a 3-process LocalCluster
# killed (SIGKILL) at five random points of a fit of 2,000 tasks; `make test` kills at one point
# (then two in sequence) on 40 tasks. FAULTS=scale: the same on 10 million rows of 100,000 tasks
# (about 6 minutes on 2 cores).
FAULTS ?= full
test-faults: $(TEST_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 REGMTL_FAULTS=$(FAULTS) \
		$(BIN)/python -m pytest -q tests/test_dask_faults.py

# The property suite (tests/test_properties_*.py) under its long Hypothesis profile: rounds of
# FUZZ_EXAMPLES random examples per property until FUZZ_SECONDS have passed (the last round is
# cut at the deadline); failing examples are kept in .hypothesis/ and replayed first next time.
# REGMTL_FUZZ_KNOWN=1 also draws the regions of the failures the suite records as xfail.
FUZZ_SECONDS ?= 600
FUZZ_EXAMPLES ?= 200

fuzz: $(TEST_STAMP)
	@end=$$(( $$(date +%s) + $(FUZZ_SECONDS) )); \
	while [ $$(date +%s) -lt $$end ]; do \
		OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		REGMTL_HYPOTHESIS_PROFILE=fuzz REGMTL_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		timeout --signal=INT $$(( end - $$(date +%s) + 1 )) \
			$(BIN)/python -m pytest -q -x tests/test_properties_*.py; \
		status=$$?; \
		if [ $$status -eq 124 ]; then echo "fuzz: $(FUZZ_SECONDS) s, no failure"; exit 0; fi; \
		if [ $$status -ne 0 ]; then exit $$status; fi; \
	done; echo "fuzz: $(FUZZ_SECONDS) s, no failure"

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench

# The site in docs/_build/html (the docs extras: Sphinx and PyTorch for the gallery); the gallery
# runs during the build and its figures land in the HTML. Broken references and any other
# warning fail it.
docs: $(DOCS_STAMP)
	cd docs && MPLBACKEND=Agg ../$(BIN)/sphinx-build -b html -n -W --keep-going -q . _build/html
	@echo "docs: open docs/_build/html/index.html"

bench: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python bench/bench_l21.py
	$(BIN)/python bench/bench_structured.py
	$(BIN)/python bench/bench_multisource.py
	$(BIN)/python bench/bench_deep.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache docs/_build \
		docs/generated docs/auto_examples

# The Benchmarks page's figures (docs/benchmarks.rst): `make bench-page` runs the benches below
# with --record (one JSON file each under bench/results/, bench/_record.py), then draws
# docs/benchmarks/*.png and docs/benchmarks/figures.inc from them (bench/figures.py); commit
# both. The wide tasks run at issue size (T = 30, p = 1000: about 25 minutes on 2 cores), the
# others are short runs (about 15 minutes); for the full sizes of those:
#   make bench-page STRUCTURED_LONG_FLAGS= L21_FLAGS=
BENCH_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
BENCH_RESULTS := bench/results
STRUCTURED_WIDE_FLAGS ?= --wide --p 1000 --repeats 1 --max-time 60 --no-diagnose \
	--penalties trace sparse_lowrank clustered mean graph --logistic trace sparse_lowrank
STRUCTURED_LONG_FLAGS ?= --T 10 --p 50 --n-min 200 --n-max 800 --max-time 10 --budget 3 \
	--no-diagnose
L21_FLAGS ?= --quick --scaling-base 400 400 5 --scaling-steps 3
PASSES_FLAGS ?=

.PHONY: bench-page bench-record bench-figures

bench-page: bench-record bench-figures

bench-record: $(STAMP)
	$(BENCH_ENV) $(BIN)/python bench/bench_structured.py $(STRUCTURED_WIDE_FLAGS) \
		--blas-threads 1 --record $(BENCH_RESULTS)/structured_wide.json
	$(BENCH_ENV) $(BIN)/python bench/bench_structured.py $(STRUCTURED_LONG_FLAGS) \
		--blas-threads 1 --record $(BENCH_RESULTS)/structured_long.json
	$(BENCH_ENV) $(BIN)/python bench/bench_l21.py $(L21_FLAGS) --blas-threads 1 \
		--scenarios shared lists logistic scaling --record $(BENCH_RESULTS)/l21.json
	$(BENCH_ENV) $(BIN)/python bench/bench_passes.py $(PASSES_FLAGS) \
		--record $(BENCH_RESULTS)/passes.json
	$(BENCH_ENV) $(BIN)/python bench/bench_cells.py --record $(BENCH_RESULTS)/cells.json
	@if [ -f bench/bench_first_call.py ]; then \
		$(BENCH_ENV) $(BIN)/python bench/bench_first_call.py \
			--record $(BENCH_RESULTS)/first_call.json; \
	else echo "bench-record: no bench/bench_first_call.py, its figure is left out"; fi

bench-figures: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python bench/figures.py
