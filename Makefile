# `make test` and `make demo` each set up .venv on first use (and refresh it when the
# project's requirements change), then run. torch is pinned to the local CPU wheel by
# constraints-dev.txt; the package itself only asks for ranges.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-avx2 demo venv bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-dev.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints-dev.txt -e '.[dev,all]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n auto

# The suite once more on the kernels of a CPU without AVX-512 (oneDNN picks its kernels by ISA; this
# switch makes any x86 machine take the AVX2 ones). CI runs both legs.
test-avx2: $(STAMP)
	ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q -n auto

demo: $(STAMP)
	$(VENV)/bin/archsearch demo

clean:
	rm -rf $(VENV) runs .pytest_cache
