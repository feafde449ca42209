# vflow: `make install` sets everything up, `make test` runs the test suite.
# Plain `make` runs lint and tests; `make help` lists every target.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(CURDIR)/$(VENV)/bin
# Debian packages the tests and benchmarks use: a virtual X server and a key-sender for
# `vflow show`, a screenshot tool, ffmpeg (a peer in `make bench`, a local test stream),
# graphviz (`vflow graph --dot --render`, the graph page), chromium (the browser the tests of
# `vflow serve` and the graph page drive, through Playwright) and iproute2 (`ip netns`: the
# network tests run send and recv in two namespaces joined by a veth pair, as root); man-db
# (`man`: the tests render every man page), openssl (the tests' TLS certificates) and procps
# (`pgrep`: the tests find the processes a stage started).
APT_PACKAGES := xvfb xdotool x11-apps ffmpeg graphviz chromium iproute2 man-db openssl procps
# An RTSP camera for the tests of `vflow camera` (GStreamer's rtsp-server, its Python
# bindings and the plugins for H.264 and MJPEG), an MQTT broker for `vflow mqtt`, and
# systemd-analyze, which checks examples/vflow-graph@.service.
APT_PACKAGES += python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly mosquitto systemd

.DEFAULT_GOAL := check
.PHONY: help check install system-deps venv link test test-all lint fmt bench man docs smoke clean pictures fuzz constraints mutate

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

check: lint test ## lint, then test (the default)

install: system-deps venv link ## install vflow and everything its tests need

system-deps: ## Debian packages for the window tests and benchmarks (needs root or sudo)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system packages: present"; \
	elif ! command -v apt-get >/dev/null; then echo "note: no apt-get; install$$missing yourself for the window tests"; \
	else sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  && echo "system packages: installed$$missing"; fi

venv: $(VENV)/.installed

# constraints.txt pins every package to the versions the suite last passed with, so a new
# release (a deprecation, with filterwarnings = error) cannot fail a fresh install's tests
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

constraints: ## pin what `make venv` installs to this venv's versions (after a dependency changes)
	( echo "# pip constraints for make venv: the versions the test suite passed with."; \
	  echo "# Refresh with \`make constraints\` after changing dependencies (then run make test)."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^vflow==' ) > constraints.txt

link: venv ## put `vflow` on PATH (~/.local/bin if on PATH, else /usr/local/bin)
	@for dir in $(HOME)/.local/bin /usr/local/bin; do \
	  case ":$$PATH:" in *":$$dir:"*) ;; *) continue;; esac; \
	  [ -w "$$dir" ] || continue; \
	  if [ -e "$$dir/vflow" ] && [ ! -L "$$dir/vflow" ]; then \
	    echo "note: $$dir/vflow is not a link made by this Makefile; left alone (use $(BIN)/vflow)"; exit 0; fi; \
	  old=$$(readlink "$$dir/vflow" 2>/dev/null || true); \
	  if [ -n "$$old" ] && [ "$$old" != "$(BIN)/vflow" ]; then \
	    echo "note: $$dir/vflow pointed to $$old (another checkout?); it now points here"; fi; \
	  ln -sf $(BIN)/vflow $$dir/vflow; echo "vflow -> $$dir/vflow"; exit 0; \
	done; echo "note: add $(BIN) to PATH to run vflow"

test: venv ## run the test suite (what CI runs)
	PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -n 2 -q --durations=20

test-all: venv ## the test suite including slow tests
	PATH="$(BIN):$$PATH" $(BIN)/python -m pytest -n 2 -q -m 'slow or not slow'

lint: venv ## ruff and mypy
	$(BIN)/ruff check vflow_cli stages tests
	$(BIN)/ruff format --check vflow_cli stages tests
	$(BIN)/mypy vflow_cli stages

fmt: venv ## format the code
	$(BIN)/ruff check --fix vflow_cli stages tests
	$(BIN)/ruff format vflow_cli stages tests

bench: venv ## speed benchmarks: a table, each row beside its peer
	PATH="$(BIN):$$PATH" $(BIN)/python -m tests.bench

man: venv ## regenerate man/vflow-STAGE.1 from each stage's --help (vflow.1 and *.5 are by hand)
	$(BIN)/python -m vflow_cli.docgen.man man

docs: venv ## regenerate the README's stage table from each stage's --help
	$(BIN)/python -m vflow_cli.docgen.readme

pictures: venv ## docs/heatmap.png, the README's heatmap, from the PETS 2009 clip
	PATH="$(BIN):$$PATH" sh examples/heatmap.sh "" docs/heatmap.png

smoke: venv ## a quick look that the README's examples run
	PATH="$(BIN):$$PATH"; export PATH; \
	vflow int 0 40 | vflow sum | vflow print | tail -n 1; \
	vflow testcard --size 1280x720 --frames 300 | vflow fps | vflow null -v

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info mutants

FUZZ_EXAMPLES ?= 3000
fuzz: venv ## a long fuzzing run: every stage against FUZZ_EXAMPLES new odd streams
	PATH="$(BIN):$$PATH" HYPOTHESIS_PROFILE=fuzz VFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(BIN)/python -m pytest -q -n 0 --timeout 0 tests/test_fuzz.py

MUTATE ?= vflow_cli.framing.* vflow_cli.graph.pool.* vflow_cli.net.reorder.* vflow_cli.vision.lines.* vflow_cli.net.job.* vflow_cli.web.auth.*
mutate: venv ## mutation testing ([tool.mutmut] in pyproject.toml): per module, mutants the tests kill
	PATH="$(BIN):$$PATH" $(BIN)/mutmut run $(MUTATE) || true
	PATH="$(BIN):$$PATH" $(BIN)/python -m tests.mutation_table
