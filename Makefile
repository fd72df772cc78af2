# Set-up is idempotent: every target that needs Python depends on the venv stamp.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export TORCH_EXTENSIONS_DIR ?= $(abspath .cache/torch_extensions)

.PHONY: run test lint bench clean dist test-dist kernels

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch is pinned here (a CPU build on this machine's disk); pyproject keeps a range for users.
	$(PY) -m pip install -q -e '.[dev]' torch==2.13.0
	# Face detection (gan/photo/mtcnn.py) reads only the MTCNN weight files shipped in this wheel; its
	# metadata pins torch<2.3 and torchvision, so it is installed without its dependencies.
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

# The C++ kernels are compiled here, visibly (1-2 min once), not behind the app's first render.
# Never fails: without a compiler the ops run on the reference implementation. The stamp is only
# written after a successful build, so a failed one is retried (and explained) next time.
KERNELS := $(TORCH_EXTENSIONS_DIR)/.kernels-built
$(KERNELS): $(STAMP) $(wildcard ops_cuda/csrc/*) ops_cuda/_native.py
	$(PY) -m ops_cuda.build --stamp $@

kernels: $(KERNELS)

# Missing X libraries are only installed when asked: on a terminal, or with INSTALL_DISPLAY_LIBS=1.
INSTALL_DISPLAY_LIBS ?= 0
run: $(STAMP) kernels
	INSTALL_DISPLAY_LIBS=$(INSTALL_DISPLAY_LIBS) bash scripts/ensure_display_libs.sh
	$(VENV)/bin/stylegan-explorer

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture

test: lint kernels
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench.generator --write
	$(PY) -m bench.ops --write
	$(PY) -m bench.render --write

# Standalone app (PyInstaller, one folder): dist/stylegan-explorer/stylegan-explorer.
DIST_STAMP := $(VENV)/.installed-dist
$(DIST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[dev,dist]' torch==2.13.0
	touch $(DIST_STAMP)

# explorer.spec builds the C++ CPU kernels (a frozen app cannot compile) and bundles them.
dist: $(DIST_STAMP)
	$(VENV)/bin/pyinstaller --noconfirm --log-level WARN explorer.spec

test-dist: dist
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m slow tests/test_dist.py

clean:
	rm -rf $(VENV) .cache build dist *.egg-info
