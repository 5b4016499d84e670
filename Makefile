# The two commands a newcomer needs: `make demo` and `make test`.
# Everything runs from ./.venv, created here from tests/requirements.txt.

PYTHON ?= python3
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
PYTEST_ARGS ?=

.PHONY: demo test venv system-deps sanity lint unit harness integration awx molecule e2e clean

$(VENV)/.installed: tests/requirements.txt requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed (found %s)" % sys.version.split()[0])'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r tests/requirements.txt
	@touch $@

venv: $(VENV)/.installed

system-deps:
	@bash tests/tools/system-deps.sh

demo: venv system-deps
	$(VENV)/bin/python tests/tools/demo.py

# Everything: ansible-test sanity, ansible-lint, unit, integration (sandbox),
# molecule and end-to-end, as one pytest run whose last line is its summary.
test: venv system-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

sanity: venv
	PYTHON=$(VENV)/bin/python bash tests/tools/sanity.sh

lint: venv
	$(VENV)/bin/ansible-lint --profile production

unit: venv
	$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

# The test harness itself (sandbox servers, Directus-shaped fixtures, the Directus runtime helper).
harness: venv system-deps
	$(VENV)/bin/python -m pytest tests/harness $(PYTEST_ARGS)

# Modules, role and playbooks against the sandbox's servers (includes awx).
integration: venv system-deps
	$(VENV)/bin/python -m pytest tests/integration $(PYTEST_ARGS)

# A job launched the way AWX/Tower does it (ansible-runner).
awx: venv system-deps
	$(VENV)/bin/python -m pytest tests/integration/test_awx_runner.py $(PYTEST_ARGS)

molecule: venv system-deps
	$(VENV)/bin/python -m pytest tests/molecule $(PYTEST_ARGS)

# A real Directus on both sides (needs Node >= 18 and npm; skipped with the reason otherwise).
e2e: venv system-deps
	$(VENV)/bin/python -m pytest tests/e2e $(PYTEST_ARGS)

clean:
	-$(VENV)/bin/python -m sandbox down --dir .sandbox 2>/dev/null
	rm -rf $(VENV) .pytest_cache tests/output
