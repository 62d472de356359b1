# `make test` and `make demo` each set up .venv on first use (and refresh it when the
# project's requirements change), then run. torch is pinned to the local CPU wheel by
# constraints-dev.txt; the package itself only asks for ranges.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-avx2 demo venv bench clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml constraints-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-dev.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints-dev.txt -e '.[dev,all]'
	touch $(STAMP)

# The report's browser test opens pages in Debian's chromium, driven by playwright (no browser download).
# Installed here where possible (root with apt-get); elsewhere the test skips and says why.
browser:
	@test -x /usr/bin/chromium || (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq \
		&& apt-get install -y -qq chromium >/dev/null) \
		|| echo "note: could not install chromium (needs root and apt-get): the browser test of 'archsearch report' will skip"

test: $(STAMP) browser
	$(PY) -m pytest -q -n auto

# The suite once more on the kernels of a CPU without AVX-512 (oneDNN picks its kernels by ISA; this
# switch makes any x86 machine take the AVX2 ones). CI runs both legs.
test-avx2: $(STAMP) browser
	ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q -n auto

demo: $(STAMP)
	$(VENV)/bin/archsearch demo

clean:
	rm -rf $(VENV) runs .pytest_cache
