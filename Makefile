# make serve: install what serving needs into .venv and start the API (127.0.0.1:8000) with one worker, on
#             SQLite (EXECUTOR=ray: the Ray dispatcher instead, with Ray installed too; ARTIFACT_STORE=s3://...:
#             models and checkpoints in an object store, with boto3 installed too).
# make test:  install the same plus the test tools and Ray (and PostgreSQL, Chromium and docker-compose when
#             missing), run the test suite on SQLite and on a throwaway PostgreSQL server, then lint and
#             type-check beside the Ray tests (in a private network namespace).
# make data ARCHIVE=cifar10-jpeg.tar.gz: unpack an offline copy of CIFAR-10 into $(DATA_DIR)/cifar10.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
RAY_STAMP := $(VENV)/.installed-ray
S3_STAMP := $(VENV)/.installed-s3
DATA_DIR ?= data
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve move-artifacts test test-sqlite test-postgresql test-ray worker lint postgresql browser compose system-packages ray data secrets clean

# what serving needs; PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu picks PyTorch's CPU-only build
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e .
	touch $(STAMP)

# Everything the tests need in one run of uv (the same packages pip would take: uv reads the indexes, links and
# constraints pip is configured with: `pip config list`, its files and PIP_* variables), byte-compiled on every
# core: where PYTHONDONTWRITEBYTECODE is set (as on this machine) Python would otherwise compile torch again in every
# process that imports it. pip unpacks one wheel at a time and compiles on one core; uv installs the same packages
# and .pyc files in about a third of the time on 2 cores (`time make .venv/.installed-test` in a fresh clone).
pip_setting = $(sort $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$(1)='\(.*\)'$$/\1/p"))
UV_SOURCES = --index-strategy unsafe-best-match $(foreach url,$(call pip_setting,extra-index-url),--extra-index-url $(url)) \
	$(foreach links,$(call pip_setting,find-links),--find-links $(links)) \
	$(foreach file,$(call pip_setting,constraint),--constraint $(file))
$(TEST_STAMP): pyproject.toml examples/vit_kind/pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q 'uv>=0.9,<1'
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python --compile-bytecode $(UV_SOURCES) -e '.[test,ray]' -e examples/vit_kind
	touch $(STAMP) $(TEST_STAMP) $(RAY_STAMP) $(S3_STAMP)

$(RAY_STAMP): $(STAMP)
	$(VENV)/bin/pip install -q -e '.[ray]'
	touch $(RAY_STAMP)

ray: $(RAY_STAMP)

$(S3_STAMP): $(STAMP)
	$(VENV)/bin/pip install -q -e '.[s3]'
	touch $(S3_STAMP)

# DATABASE_URL=... ARTIFACT_STORE=s3://bucket/prefix make move-artifacts: the database's blobs into the store
move-artifacts: $(S3_STAMP)
	$(VENV)/bin/python -m store.move_artifacts

serve: $(STAMP) $(if $(filter ray,$(EXECUTOR)),$(RAY_STAMP)) $(if $(ARTIFACT_STORE),$(S3_STAMP))
	$(VENV)/bin/python -m app.serve

worker: $(STAMP)
	$(VENV)/bin/python -m workers

data:
	@test -n "$(ARCHIVE)" || (echo "usage: make data ARCHIVE=path/to/cifar10-jpeg.tar.gz" >&2; exit 2)
	mkdir -p $(DATA_DIR)/cifar10
	tar -xzf $(ARCHIVE) -C $(DATA_DIR)/cifar10
	@echo "CIFAR-10 in $(DATA_DIR)/cifar10: $$(find $(DATA_DIR)/cifar10/train -name '*.jpg' | wc -l) training images"

# The same checks run as pre-commit hooks (.pre-commit-config.yaml): formatting, lint (queries built only in
# store/), strict types everywhere, the import contract of pyproject.toml (which package may import which), the
# unit of work (harness/store_rules.py: no commit outside it, no session calls outside store/) and dead code.
PY_DIRS := app workers store models specs migrations cli cifar_jobs harness tests bench sweeps webhooks supervision examples/vit_kind
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff format --check $(PY_DIRS)
	$(VENV)/bin/ruff check $(PY_DIRS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/python -m harness.store_rules
	$(VENV)/bin/vulture

# docker-compose.yml's secrets, random, written once into ./secrets (0700; the files stay readable for the
# containers' unprivileged user, which docker-compose mounts them for)
secrets:
	@mkdir -p secrets && chmod 700 secrets
	@for name in postgres_password api_key ray_auth_token; do \
		test -s secrets/$$name || (umask 022 && openssl rand -hex 24 > secrets/$$name); done
	@test -s secrets/database_url || (umask 022 && \
		echo "postgresql+psycopg://cifar:$$(cat secrets/postgres_password)@postgres:5432/cifar" > secrets/database_url)
	@echo "secrets in ./secrets: the API key is in secrets/api_key"

# Debian's packages the tests use: PostgreSQL (the tests start their own server on 127.0.0.1), Chromium (Playwright
# drives it; it downloads no browser of its own), docker-compose (checks docker-compose.yml; no Docker engine is
# needed or started). Each has its own target; `system-packages` installs those missing in one apt-get run.
HAS_postgresql := ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
HAS_chromium := command -v chromium >/dev/null 2>&1
HAS_docker-compose := command -v docker-compose >/dev/null 2>&1
APT_INSTALL := $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q
postgresql:
	@$(HAS_postgresql) || ($(APT_INSTALL) postgresql)
browser:
	@$(HAS_chromium) || ($(APT_INSTALL) chromium)
compose:
	@$(HAS_docker-compose) || ($(APT_INSTALL) docker-compose)
system-packages:
	@missing=$$(echo $(foreach package,postgresql chromium docker-compose,$$($(HAS_$(package)) || echo $(package)))); \
		test -z "$$missing" || ($(APT_INSTALL) $$missing)

# The layers (tests/conftest.py): unit, store, service and browser on SQLite; on PostgreSQL the store
# layer and the service tests marked `postgresql`; Ray in its own namespace. TEST_PROCESSES pytest
# processes at a time (pytest-xdist; a module's tests stay together in one).
TEST_PROCESSES ?= 2
PYTEST := $(VENV)/bin/python -m pytest -n $(TEST_PROCESSES) --dist loadfile
test-sqlite: $(TEST_STAMP) system-packages
	$(PYTEST) tests/unit tests/store tests/service tests/browser

test-postgresql: $(TEST_STAMP) system-packages
	TEST_DATABASE=postgresql $(PYTEST) tests/store tests/service -m "store or postgresql"

# The Ray executor against a real two-node Ray cluster, inside a private network namespace (root):
# there loopback is the only address, so Ray cannot advertise another one.
test-ray: $(TEST_STAMP)
	unshare --net sh -c 'ip link set lo up && $(VENV)/bin/python -m pytest tests/ray'

# The Python packages and Debian's side by side (uv unpacking wheels, apt-get downloading and unpacking), then two
# stages of two jobs, each pair about one machine's worth: the SQLite layers (two pytest processes) with lint (one
# core for a while), then PostgreSQL's layer with Ray's tests (which mostly wait on the cluster; beside the SQLite
# layers, Ray's daemons and its start-up slowed them more than lint does).
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target $(TEST_STAMP) system-packages
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite lint
	$(MAKE) --no-print-directory -j2 --output-sync=target test-postgresql test-ray

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
